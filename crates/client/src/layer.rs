//! The axum/tower layer that guards routes with a [`Verifier`]: no or a bad token is
//! answered 401, a missing scope 403 (RFC 6750 section 3), and a good token's
//! claims are handed to the handler in the request extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_proto::{BARE_BEARER_CHALLENGE, ErrorCode, OAuthErrorResponse, bearer_challenge};
use tower::{Layer, Service};

use crate::verifier::{Verifier, VerifyError};

/// RFC 6750 section 3.1's code for a token without the scope a resource needs
/// (not in [`ErrorCode`], which lists the token endpoint's codes).
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// Requires a valid access token (and scopes) on every request of the routes it wraps.
/// The handler reads the claims with `Extension<AccessTokenClaims>`.
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use jwtgrant_client::{AccessTokenClaims, RequireAccessToken, Verifier};
///
/// async fn me(Extension(claims): Extension<AccessTokenClaims>) -> String {
///     claims.sub
/// }
///
/// # fn app() -> Result<Router, jwtgrant_client::VerifyError> {
/// let verifier = Verifier::discover("https://auth.example.com").build()?;
/// let app = Router::new()
///     .route("/me", get(me))
///     .route_layer(RequireAccessToken::new(verifier).scopes(["signature"]));
/// # Ok(app) }
/// ```
#[derive(Debug, Clone)]
pub struct RequireAccessToken {
    verifier: Verifier,
    scopes: Arc<[String]>,
}

impl RequireAccessToken {
    /// Requires a token `verifier` accepts, with no particular scope.
    pub fn new(verifier: Verifier) -> Self {
        RequireAccessToken {
            verifier,
            scopes: Arc::from([]),
        }
    }

    /// Also requires each of `scopes`.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl<S> Layer<S> for RequireAccessToken {
    type Service = RequireAccessTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAccessTokenService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service [`RequireAccessToken`] wraps around a route.
#[derive(Debug, Clone)]
pub struct RequireAccessTokenService<S> {
    inner: S,
    guard: RequireAccessToken,
}

impl<S, B> Service<Request<B>> for RequireAccessTokenService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let Some(token) = bearer_token(request.headers()).map(str::to_owned) else {
                return Ok(AuthRejection::MissingToken.into_response());
            };
            match guard
                .verifier
                .verify_with_scopes(&token, &guard.scopes)
                .await
            {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(error) => Ok(AuthRejection::Refused(error).into_response()),
            }
        })
    }
}

/// Reads `Authorization: Bearer <token>` (scheme case-insensitive), as the
/// jwtgrant server reads it ([`jwtgrant_proto::bearer_token`]).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    jwtgrant_proto::bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// Why a request was refused, and its RFC 6750 answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token: 401 with a bare `WWW-Authenticate: Bearer`.
    MissingToken,
    /// The token was refused: 401 `invalid_token`, 403 `insufficient_scope`, or
    /// 503 when the server's keys cannot be fetched.
    Refused(VerifyError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::MissingToken => {
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BARE_BEARER_CHALLENGE),
                );
                response
            }
            AuthRejection::Refused(VerifyError::InsufficientScope { required, missing }) => {
                let challenge =
                    bearer_challenge(Some(INSUFFICIENT_SCOPE), None, Some(&required.join(" ")));
                error_response(
                    StatusCode::FORBIDDEN,
                    INSUFFICIENT_SCOPE,
                    format!("the access token lacks the scope '{missing}'"),
                    Some(challenge),
                )
            }
            AuthRejection::Refused(VerifyError::Invalid(reason)) => {
                let description = reason.to_string();
                let challenge = bearer_challenge(
                    Some(ErrorCode::InvalidToken.as_str()),
                    Some(&description),
                    None,
                );
                error_response(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidToken.as_str(),
                    description,
                    Some(challenge),
                )
            }
            AuthRejection::Refused(error) => {
                tracing::warn!(%error, "cannot verify access tokens");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable.as_str(),
                    "access tokens cannot be verified right now; retry shortly".into(),
                    None,
                )
            }
        }
    }
}

fn error_response(
    status: StatusCode,
    code: &str,
    description: String,
    challenge: Option<String>,
) -> Response {
    let body = OAuthErrorResponse {
        error: code.to_owned(),
        error_description: Some(description),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let response = AuthRejection::MissingToken.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");

        let response = AuthRejection::Refused(VerifyError::InsufficientScope {
            required: vec!["a".into(), "b".into()],
            missing: "b".into(),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", scope=\"a b\""
        );

        let response = AuthRejection::Refused(VerifyError::Invalid(
            jwtgrant_core::access_token::TokenError::Expired,
        ))
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"the access token has expired\""
        );
    }
}
