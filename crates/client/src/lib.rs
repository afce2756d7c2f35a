//! The jwtgrant client SDK: everything a service integration and a resource server
//! need around an OAuth 2.0 JWT bearer grant (RFC 7523) server — jwtgrant itself,
//! DocuSign's account server, Google's token endpoint or any other.
//!
//! - [`keys`]: load the integration's private key (PEM or private JWK).
//! - [`assertion`]: build and sign the assertion ([`AssertionBuilder`]).
//! - [`assertion`]: also the client assertion of `private_key_jwt` client
//!   authentication ([`ClientAssertionBuilder`]) and its form fields.
//! - [`token_source`]: hold a fresh access token ([`TokenSource`]), by the JWT
//!   bearer grant or the client credentials grant with a client assertion: cached,
//!   refreshed before expiry, one request for many callers, retries with backoff.
//! - [`token_client`]: the token calls of the authorization code flow
//!   ([`TokenClient`]): exchange a code, refresh, revoke, introspect, the client
//!   authenticated by `client_secret_basic`, `client_secret_post`,
//!   `private_key_jwt` or as a public client ([`ClientAuthentication`]); and
//!   [`authorization`]: the authorization URL with PKCE and `state`
//!   ([`AuthorizationRequest`]) and its callback.
//! - [`cross_app`]: cross-app access for an agent ([`CrossAppAccess`]): the user's
//!   ID token exchanged at the identity provider for an ID-JAG, presented at the
//!   resource's authorization server for an access token.
//! - [`presets`]: DocuSign, Google-style service-account key files, jwtgrant.
//! - [`discovery`]: RFC 8414 authorization server metadata.
//! - [`verifier`]: check RFC 9068 access tokens against the server's JWKS
//!   ([`Verifier`]), and [`layer`]: the axum/tower layer that guards routes with it.
//! - [`protected_resource`]: describe the API the layer guards (RFC 9728,
//!   [`ProtectedResource`]), as an MCP server must: the layer then serves its
//!   `/.well-known/oauth-protected-resource` metadata, names that document in every
//!   `WWW-Authenticate` challenge, and takes only tokens whose `aud` is the
//!   resource (`examples/mcp_server.rs`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use jwtgrant_client::{BearerAuth as _, PrivateKey, TokenSource};
//!
//! let key = PrivateKey::from_file("my-integration.pem")?;
//! let tokens = TokenSource::builder("9c2f7d1e-integration-key", key)
//!     .server("https://auth.example.com")
//!     .subject("0f1e2d3c-user-id")
//!     .scopes(["signature", "impersonation"])
//!     .build()?;
//! let response = reqwest::Client::new()
//!     .get("https://api.example.com/v2/accounts")
//!     .bearer_token_from(&tokens)
//!     .await?
//!     .send()
//!     .await?;
//! # drop(response);
//! # Ok(())
//! # }
//! ```

pub mod assertion;
pub mod authorization;
pub mod cross_app;
pub mod discovery;
pub mod keys;
pub mod layer;
pub mod presets;
pub mod protected_resource;
mod retry;
pub mod token_client;
pub mod token_source;
pub mod verifier;

pub use assertion::{
    AssertionBuilder, AssertionError, ClientAssertionBuilder, ClientAssertionFields,
};
pub use authorization::{AuthorizationError, AuthorizationRequest, PendingAuthorization, Pkce};
pub use cross_app::CrossAppAccess;
pub use discovery::{DiscoveryError, discover};
pub use jwtgrant_core::JwsAlgorithm;
pub use jwtgrant_core::access_token::AccessTokenClaims;
pub use jwtgrant_proto::{
    AuthorizationServerMetadata, JwtGrant, JwtGrantResponse, OAuthErrorResponse,
    ProtectedResourceMetadata, TokenExchangeResponse,
};
pub use keys::{KeyLoadError, PrivateKey};
pub use layer::{AuthRejection, RequireAccessToken};
pub use presets::{DocuSign, Jwtgrant, PresetError, ServiceAccountKey};
pub use protected_resource::{ProtectedResource, ResourceError};
pub use retry::RetryPolicy;
pub use token_client::{
    ClientAuthentication, Introspection, TokenClient, TokenClientBuilder, TokenClientError,
    TokenTypeHint,
};
pub use token_source::{
    AccessToken, BearerAuth, OAuthError, TokenSource, TokenSourceBuilder, TokenSourceError,
};
pub use verifier::{Verifier, VerifierBuilder, VerifyError};
