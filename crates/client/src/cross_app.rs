//! Cross-app access from the agent's side, as one call: trade the user's ID token
//! at the enterprise identity provider for an ID-JAG for the resource's
//! authorization server (RFC 8693 token exchange), then present the ID-JAG there
//! with the JWT bearer grant (RFC 7523), the agent's client authenticated at each.

use jwtgrant_proto::JwtGrantResponse;

use crate::token_client::{TokenClient, TokenClientError};

/// The two token endpoints of cross-app access and what to ask them for.
///
/// ```no_run
/// # async fn run(id_token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use jwtgrant_client::{ClientAuthentication, CrossAppAccess, TokenClient};
///
/// let idp = TokenClient::discover(
///     "https://idp.example.com",
///     ClientAuthentication::client_secret_basic("agent", "its secret at the IdP"),
/// )
/// .await?;
/// let mcp_auth = TokenClient::discover(
///     "https://auth.mcp.example.com",
///     ClientAuthentication::client_secret_basic("agent-at-mcp", "its secret there"),
/// )
/// .await?;
/// let access = CrossAppAccess::new(idp, mcp_auth)
///     .resource("https://mcp.example.com/mcp")
///     .scope("mcp:tools");
/// let token = access.access_token(id_token).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CrossAppAccess {
    idp: TokenClient,
    authorization_server: TokenClient,
    audience: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

impl CrossAppAccess {
    /// The identity provider's token client and the resource authorization
    /// server's, each with the agent's client authentication there.
    pub fn new(idp: TokenClient, authorization_server: TokenClient) -> Self {
        CrossAppAccess {
            idp,
            authorization_server,
            audience: None,
            resource: None,
            scope: None,
        }
    }

    /// The ID-JAG's audience, when it is not the authorization server's issuer
    /// (which discovery, or [`TokenClientBuilder::issuer`](crate::TokenClientBuilder::issuer), gave).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The resource (RFC 8707) the access token is for.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// The scopes to ask for, space separated.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// An access token of the authorization server for the user of `id_token`.
    pub async fn access_token(&self, id_token: &str) -> Result<JwtGrantResponse, TokenClientError> {
        let audience = self
            .audience
            .as_deref()
            .or(self.authorization_server.issuer())
            .ok_or(TokenClientError::MissingEndpoint(
                "issuer (the ID-JAG audience)",
            ))?;
        let id_jag = self
            .idp
            .exchange_id_token_for_id_jag(
                id_token,
                audience,
                self.resource.as_deref(),
                self.scope.as_deref(),
            )
            .await?;
        self.authorization_server
            .jwt_bearer(&id_jag.access_token, self.scope.as_deref(), None)
            .await
    }
}
