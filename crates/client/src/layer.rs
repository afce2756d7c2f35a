//! The axum/tower layer that guards routes with a [`Verifier`]: no or a bad token is
//! answered 401, a missing scope 403 (RFC 6750 section 3), and a good token's
//! claims are handed to the handler in the request extensions. Given the
//! [`ProtectedResource`] it guards, it also serves that resource's RFC 9728
//! metadata, names it in every challenge, and takes only tokens for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_proto::{BearerChallenge, ErrorCode, OAuthErrorResponse, ProtectedResourceMetadata};
use tower::{Layer, Service};

use crate::protected_resource::ProtectedResource;
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
///
/// An API that clients discover by its RFC 9728 metadata, such as an MCP server,
/// names the resource it is and merges the router that serves the document:
///
/// ```no_run
/// use axum::{Router, routing::post};
/// use jwtgrant_client::{ProtectedResource, RequireAccessToken, Verifier};
///
/// # fn app() -> Result<Router, Box<dyn std::error::Error>> {
/// let verifier = Verifier::discover("https://auth.example.com").build()?;
/// let guard = RequireAccessToken::new(verifier)
///     .scopes(["mcp:tools"])
///     .resource(ProtectedResource::new("https://api.example.com/mcp")?.resource_name("Example"));
/// let app = Router::new()
///     .route("/mcp", post(|| async { "{}" }))
///     .route_layer(guard.clone())
///     .merge(guard.metadata_router());
/// # Ok(app) }
/// ```
#[derive(Debug, Clone)]
pub struct RequireAccessToken {
    verifier: Verifier,
    scopes: Arc<[String]>,
    /// The resource guarded, when described: its metadata URL goes in every
    /// challenge and its identifier is the `aud` expected.
    resource: Option<Arc<ProtectedResource>>,
}

impl RequireAccessToken {
    /// Requires a token `verifier` accepts, with no particular scope.
    pub fn new(verifier: Verifier) -> Self {
        RequireAccessToken {
            verifier,
            scopes: Arc::from([]),
            resource: None,
        }
    }

    /// Guards `resource` (RFC 9728): every challenge names its metadata URL, a
    /// 401 also the scopes required, [`RequireAccessToken::metadata_router`]
    /// serves the document, and a token must have the resource in `aud` (401
    /// `invalid_token` otherwise) unless the verifier was built with an audience
    /// of its own.
    #[must_use]
    pub fn resource(mut self, resource: ProtectedResource) -> Self {
        self.verifier = self.verifier.for_resource(resource.resource());
        self.resource = Some(Arc::new(resource));
        self
    }

    /// The metadata document served for the resource, with the layer's defaults
    /// filled in: the verifier's issuer when no authorization server is named, the
    /// scopes required when no `scopes_supported` is. `None` without a resource.
    pub fn metadata(&self) -> Option<ProtectedResourceMetadata> {
        let mut metadata = self.resource.as_ref()?.metadata().clone();
        if metadata.authorization_servers.is_empty() {
            metadata.authorization_servers = vec![self.verifier.issuer().to_owned()];
        }
        if metadata.scopes_supported.is_empty() {
            metadata.scopes_supported = self.scopes.to_vec();
        }
        Some(metadata)
    }

    /// A router answering `GET` at the resource's metadata path with
    /// [`RequireAccessToken::metadata`] as JSON, to merge into the app outside the
    /// layer (the document is public). Without a resource it routes nothing.
    pub fn metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (Some(resource), Some(metadata)) = (&self.resource, self.metadata()) else {
            return Router::new();
        };
        let metadata = Arc::new(metadata);
        Router::new().route(
            resource.metadata_path(),
            axum::routing::get(move || {
                let metadata = Arc::clone(&metadata);
                async move { axum::Json(ProtectedResourceMetadata::clone(&metadata)) }
            }),
        )
    }

    /// What this layer adds to a challenge: the metadata URL, and the scopes the
    /// route requires for a 401 (MCP asks a resource to name them, so a client
    /// knows what to ask for before it has any token).
    fn challenge_context(&self) -> ChallengeContext<'_> {
        let Some(resource) = &self.resource else {
            return ChallengeContext::default();
        };
        ChallengeContext {
            resource_metadata: Some(resource.metadata_url()),
            scope: (!self.scopes.is_empty()).then(|| self.scopes.join(" ")),
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
                return Ok(AuthRejection::MissingToken.respond(guard.challenge_context()));
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
                Err(error) => Ok(AuthRejection::Refused(error).respond(guard.challenge_context())),
            }
        })
    }
}

/// Reads `Authorization: Bearer <token>` (scheme case-insensitive), as the
/// jwtgrant server reads it ([`jwtgrant_proto::bearer_token`]).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    jwtgrant_proto::bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// Why a request was refused, and its RFC 6750 answer. Answered by the layer, the
/// challenge also carries the `resource_metadata` of a described resource (and,
/// on a 401, the scopes required); answered alone (`into_response`), neither.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token: 401 with a bare `WWW-Authenticate: Bearer`.
    MissingToken,
    /// The token was refused: 401 `invalid_token`, 403 `insufficient_scope`, or
    /// 503 when the server's keys cannot be fetched.
    Refused(VerifyError),
}

/// The parameters a guard adds to its challenges; none for a bare rejection.
#[derive(Debug, Default)]
struct ChallengeContext<'a> {
    /// RFC 9728 section 5.1's `resource_metadata`.
    resource_metadata: Option<&'a str>,
    /// The scopes to name in a 401 (a 403 names those the token lacked).
    scope: Option<String>,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.respond(ChallengeContext::default())
    }
}

impl AuthRejection {
    fn respond(self, context: ChallengeContext<'_>) -> Response {
        let challenge = BearerChallenge {
            resource_metadata: context.resource_metadata,
            ..BearerChallenge::default()
        };
        match self {
            AuthRejection::MissingToken => {
                let challenge = BearerChallenge {
                    scope: context.scope.as_deref(),
                    ..challenge
                };
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge.to_string()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            AuthRejection::Refused(VerifyError::InsufficientScope { required, missing }) => {
                let required = required.join(" ");
                let challenge = BearerChallenge {
                    error: Some(INSUFFICIENT_SCOPE),
                    scope: Some(&required),
                    ..challenge
                };
                error_response(
                    StatusCode::FORBIDDEN,
                    INSUFFICIENT_SCOPE,
                    format!("the access token lacks the scope '{missing}'"),
                    Some(challenge),
                )
            }
            AuthRejection::Refused(VerifyError::Invalid(reason)) => {
                let description = reason.to_string();
                let challenge = BearerChallenge {
                    error: Some(ErrorCode::InvalidToken.as_str()),
                    error_description: Some(&description),
                    scope: context.scope.as_deref(),
                    ..challenge
                };
                error_response(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidToken.as_str(),
                    description.clone(),
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
    challenge: Option<BearerChallenge<'_>>,
) -> Response {
    let body = OAuthErrorResponse {
        error: code.to_owned(),
        error_description: Some(description),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::VerifierBuilder;
    use jwtgrant_core::access_token::TokenError;

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

        let response =
            AuthRejection::Refused(VerifyError::Invalid(TokenError::Expired)).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"the access token has expired\""
        );
    }

    const ISSUER: &str = "https://auth.example.com";
    const MCP: &str = "https://api.example.com/mcp";
    const MCP_METADATA: &str = "https://api.example.com/.well-known/oauth-protected-resource/mcp";

    fn verifier() -> VerifierBuilder {
        Verifier::builder(ISSUER, format!("{ISSUER}/oauth/jwks"))
    }

    fn mcp_guard() -> RequireAccessToken {
        RequireAccessToken::new(verifier().build().unwrap())
            .resource(ProtectedResource::new(MCP).unwrap())
            .scopes(["mcp:tools", "mcp:read"])
    }

    fn challenge(guard: &RequireAccessToken, rejection: AuthRejection) -> (StatusCode, String) {
        let response = rejection.respond(guard.challenge_context());
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), challenge)
    }

    #[test]
    fn a_resource_is_named_in_every_challenge() {
        let guard = mcp_guard();
        assert_eq!(
            challenge(&guard, AuthRejection::MissingToken),
            (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer scope=\"mcp:tools mcp:read\", resource_metadata=\"{MCP_METADATA}\""
                )
            )
        );
        assert_eq!(
            challenge(
                &guard,
                AuthRejection::Refused(VerifyError::Invalid(TokenError::WrongAudience))
            ),
            (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"the access token is for \
                     another audience\", scope=\"mcp:tools mcp:read\", resource_metadata=\"{MCP_METADATA}\""
                )
            )
        );
        assert_eq!(
            challenge(
                &guard,
                AuthRejection::Refused(VerifyError::InsufficientScope {
                    required: vec!["mcp:tools".into(), "mcp:read".into()],
                    missing: "mcp:read".into(),
                })
            ),
            (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:read\", \
                     resource_metadata=\"{MCP_METADATA}\""
                )
            )
        );

        let unscoped = RequireAccessToken::new(verifier().build().unwrap())
            .resource(ProtectedResource::new(MCP).unwrap());
        assert_eq!(
            challenge(&unscoped, AuthRejection::MissingToken).1,
            format!("Bearer resource_metadata=\"{MCP_METADATA}\"")
        );
        let plain = RequireAccessToken::new(verifier().build().unwrap()).scopes(["mcp:tools"]);
        assert_eq!(challenge(&plain, AuthRejection::MissingToken).1, "Bearer");
    }

    #[test]
    fn a_resource_is_the_audience_unless_the_verifier_names_one() {
        let plain = RequireAccessToken::new(verifier().build().unwrap());
        assert_eq!(plain.verifier.audience(), Some(ISSUER));
        assert_eq!(mcp_guard().verifier.audience(), Some(MCP));

        let other = ProtectedResource::new("https://api.example.com/other").unwrap();
        let moved = mcp_guard().resource(other.clone());
        assert_eq!(
            moved.verifier.audience(),
            Some("https://api.example.com/other")
        );

        let chosen = RequireAccessToken::new(verifier().audience("api").build().unwrap())
            .resource(other.clone());
        assert_eq!(chosen.verifier.audience(), Some("api"));
        let any =
            RequireAccessToken::new(verifier().any_audience().build().unwrap()).resource(other);
        assert_eq!(any.verifier.audience(), None);
    }

    #[test]
    fn the_metadata_fills_in_the_issuer_and_the_required_scopes() {
        assert_eq!(
            serde_json::to_value(mcp_guard().metadata().unwrap()).unwrap(),
            serde_json::json!({
                "resource": MCP,
                "authorization_servers": [ISSUER],
                "scopes_supported": ["mcp:tools", "mcp:read"],
                "bearer_methods_supported": ["header"],
            })
        );
        let named = RequireAccessToken::new(verifier().build().unwrap())
            .scopes(["mcp:tools"])
            .resource(
                ProtectedResource::new(MCP)
                    .unwrap()
                    .authorization_server("https://idp.example.com")
                    .scopes_supported(["mcp:tools", "mcp:admin"])
                    .resource_name("Example MCP"),
            );
        assert_eq!(
            serde_json::to_value(named.metadata().unwrap()).unwrap(),
            serde_json::json!({
                "resource": MCP,
                "authorization_servers": ["https://idp.example.com"],
                "scopes_supported": ["mcp:tools", "mcp:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Example MCP",
            })
        );
        assert_eq!(
            RequireAccessToken::new(verifier().build().unwrap()).metadata(),
            None
        );
    }

    async fn get(app: Router, path: &str) -> (StatusCode, String, Option<String>) {
        use tower::ServiceExt as _;
        let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), challenge)
    }

    #[tokio::test]
    async fn serves_the_metadata_at_its_path_outside_the_guard() {
        let guard = mcp_guard();
        let app = Router::new()
            .route("/mcp", axum::routing::get(|| async { "guarded" }))
            .route_layer(guard.clone())
            .merge(guard.metadata_router());

        let (status, body, _) = get(app.clone(), "/.well-known/oauth-protected-resource/mcp").await;
        assert_eq!(status, StatusCode::OK);
        let served: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            served,
            serde_json::to_value(guard.metadata().unwrap()).unwrap()
        );

        let (status, _, _) = get(app.clone(), "/.well-known/oauth-protected-resource").await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a resource with a path is served there only"
        );

        let (status, body, challenge) = get(app, "/mcp").await;
        assert_eq!((status, body.as_str()), (StatusCode::UNAUTHORIZED, ""));
        assert_eq!(
            challenge.as_deref(),
            Some(
                format!(
                    "Bearer scope=\"mcp:tools mcp:read\", resource_metadata=\"{MCP_METADATA}\""
                )
                .as_str()
            )
        );

        let root = RequireAccessToken::new(verifier().build().unwrap())
            .resource(ProtectedResource::new("https://api.example.com").unwrap());
        let (status, body, _) = get(
            root.metadata_router(),
            "/.well-known/oauth-protected-resource",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("\"resource\":\"https://api.example.com\""),
            "{body}"
        );

        let none: Router = RequireAccessToken::new(verifier().build().unwrap()).metadata_router();
        let (status, _, _) = get(none, "/.well-known/oauth-protected-resource").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
