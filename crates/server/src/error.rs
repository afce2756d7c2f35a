//! The server's errors and their one mapping to the wire: status, headers and the
//! OAuth JSON body. Handlers return these; no handler builds an error body itself.
//! Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::GrantError;
use jwtgrant_core::client_auth::ClientAuthError;
use jwtgrant_proto::{ErrorCode, OAuthErrorResponse};

/// A token request that is malformed before any grant logic runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not a form.
    #[error("form_content_type: Content-Type must be application/x-www-form-urlencoded")]
    WrongContentType,
    /// The body is not UTF-8.
    #[error("form_not_utf8: the request body is not valid UTF-8 (also after percent-decoding)")]
    NotUtf8,
    /// A required parameter is absent or empty.
    #[error("parameter_missing: missing '{0}' parameter")]
    Missing(&'static str),
    /// A parameter appears more than once (RFC 6749 section 3.2).
    #[error("parameter_repeated: parameter '{0}' is repeated; each parameter may appear once")]
    Repeated(String),
    /// The body is over the limit.
    #[error("body_too_large: request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("body_unreadable: could not read the request body")]
    Body,
}

impl RequestError {
    /// The stable rule code this refusal's description leads with.
    pub fn rule(&self) -> &'static str {
        match self {
            RequestError::WrongContentType => "form_content_type",
            RequestError::NotUtf8 => "form_not_utf8",
            RequestError::Missing(_) => "parameter_missing",
            RequestError::Repeated(_) => "parameter_repeated",
            RequestError::TooLarge(_) => "body_too_large",
            RequestError::Body => "body_unreadable",
        }
    }
}

/// Every way the token endpoint answers other than with a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenEndpointError {
    /// Malformed request.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A `grant_type` this server does not implement.
    #[error(
        "unsupported_grant_type: grant_type '{0}' is not supported; use urn:ietf:params:oauth:grant-type:jwt-bearer"
    )]
    UnsupportedGrantType(String),
    /// The core refused the grant.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// Client authentication failed or was malformed.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// The client may not use this grant.
    #[error("{rule}: {reason}")]
    UnauthorizedClient {
        /// The rule the client breaks.
        rule: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// Too many requests from this client or for this integration.
    #[error("rate_limited: too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The store cannot be reached: no token without its checks.
    #[error("store_unavailable: the service is temporarily unavailable; retry shortly")]
    Unavailable(String),
    /// An unexpected failure.
    #[error("internal_error: internal error")]
    Internal(String),
}

impl TokenEndpointError {
    /// The stable rule code the description leads with: the name the client, the
    /// audit trail, the traces and the metrics give this answer.
    pub fn rule(&self) -> &'static str {
        match self {
            TokenEndpointError::Request(error) => error.rule(),
            TokenEndpointError::UnsupportedGrantType(_) => "unsupported_grant_type",
            TokenEndpointError::Grant(error) => error.rule(),
            TokenEndpointError::ClientAuth(error) => error.rule(),
            TokenEndpointError::UnauthorizedClient { rule, .. } => rule,
            TokenEndpointError::RateLimited { .. } => "rate_limited",
            TokenEndpointError::Unavailable(_) => "store_unavailable",
            TokenEndpointError::Internal(_) => "internal_error",
        }
    }

    /// The OAuth error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenEndpointError::Request(_) => ErrorCode::InvalidRequest,
            TokenEndpointError::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            TokenEndpointError::Grant(error) => error.code(),
            TokenEndpointError::ClientAuth(
                ClientAuthError::SeveralMethods | ClientAuthError::ClientIdMismatch,
            ) => ErrorCode::InvalidRequest,
            TokenEndpointError::ClientAuth(_) => ErrorCode::InvalidClient,
            TokenEndpointError::UnauthorizedClient { .. } => ErrorCode::UnauthorizedClient,
            TokenEndpointError::RateLimited { .. } => ErrorCode::SlowDown,
            TokenEndpointError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
            TokenEndpointError::Internal(_) => ErrorCode::ServerError,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            TokenEndpointError::Request(RequestError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            TokenEndpointError::ClientAuth(_) | TokenEndpointError::Grant(_)
                if self.code() == ErrorCode::InvalidClient =>
            {
                StatusCode::UNAUTHORIZED
            }
            TokenEndpointError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            TokenEndpointError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            TokenEndpointError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<jwtgrant_store::StoreError> for TokenEndpointError {
    fn from(error: jwtgrant_store::StoreError) -> Self {
        TokenEndpointError::Unavailable(error.to_string())
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        match &self {
            TokenEndpointError::Unavailable(cause) => {
                tracing::warn!(%cause, "token request refused: store unavailable")
            }
            TokenEndpointError::Internal(cause) => tracing::error!(%cause, "token request failed"),
            other => tracing::debug!(error = %other, "token request refused"),
        }
        let mut response = oauth_error(self.status(), self.code(), self.to_string());
        let retry_after = match &self {
            TokenEndpointError::Unavailable(_) => Some(1),
            TokenEndpointError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // RFC 6749 section 5.2: the scheme the client should authenticate with; not
        // when it authenticated with a client assertion (PROTOCOL.md: only when Basic
        // may have been tried), where clients such as openid-client take the Basic
        // challenge for the answer.
        let by_assertion = matches!(
            &self,
            TokenEndpointError::ClientAuth(
                ClientAuthError::ClientAssertion(_)
                    | ClientAuthError::ClientAssertionType
                    | ClientAuthError::ClientAssertionClientId
                    | ClientAuthError::ClientAssertionSubject
                    | ClientAuthError::ClientAssertionJtiRequired
                    | ClientAuthError::ClientAssertionTyp(_)
                    | ClientAuthError::ClientAssertionReplayed
                    | ClientAuthError::ClientAssertionUnknownClient
            )
        );
        if response.status() == StatusCode::UNAUTHORIZED && !by_assertion {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"jwtgrant\""),
            );
        }
        response
    }
}

/// Why a bearer token was not accepted (RFC 6750 section 3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The token is not valid.
    #[error("{0}")]
    InvalidToken(String),
    /// The store cannot be reached.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable(String),
}

impl From<jwtgrant_store::StoreError> for BearerError {
    fn from(error: jwtgrant_store::StoreError) -> Self {
        BearerError::Unavailable(error.to_string())
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        match self {
            BearerError::Missing => {
                let mut response = oauth_error(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidToken,
                    "an access token is required".into(),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(jwtgrant_proto::BARE_BEARER_CHALLENGE),
                );
                response
            }
            BearerError::InvalidToken(reason) => {
                let challenge = jwtgrant_proto::bearer_challenge(
                    Some(ErrorCode::InvalidToken.as_str()),
                    Some(&reason),
                    None,
                );
                let mut response =
                    oauth_error(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, reason);
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            BearerError::Unavailable(cause) => {
                tracing::warn!(%cause, "bearer request refused: store unavailable");
                oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; retry shortly".into(),
                )
            }
        }
    }
}

/// An OAuth JSON error body with `Cache-Control: no-store`.
pub(crate) fn oauth_error(status: StatusCode, code: ErrorCode, description: String) -> Response {
    let body = OAuthErrorResponse {
        error: code.as_str().to_owned(),
        error_description: Some(description),
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Why the connection layer answered instead of an endpoint: a request too slow to
/// arrive or to be answered, or one connection too many. The connection is closed
/// after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The body did not arrive within the body timeout (seconds).
    #[error("body_timeout: the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// No answer within the request timeout (seconds).
    #[error("request_timeout: the request was not answered within {0} s; retry shortly")]
    RequestTimeout(u64),
    /// At the connection cap.
    #[error("too_many_connections: the server is at its connection limit; retry shortly")]
    TooManyConnections,
}

impl IntoResponse for ConnectionError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            ConnectionError::BodyTimeout(_) => {
                (StatusCode::REQUEST_TIMEOUT, ErrorCode::InvalidRequest)
            }
            ConnectionError::RequestTimeout(_) => {
                tracing::warn!("{self}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                )
            }
            ConnectionError::TooManyConnections => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
            ),
        };
        let mut response = oauth_error(status, code, self.to_string());
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        response
    }
}
