//! The registry as the core sees it: integrations with their parsed keys, users and
//! consents. The adapters load these from the store; the core only reads them.

use crate::keys::PublicKey;

/// A registered client application. Its `key` is the assertion's `iss` and the
/// access token's `client_id`.
#[derive(Debug, Clone)]
pub struct Integration {
    /// The integration key (a UUID).
    pub key: String,
    /// A human name, shown on consent pages.
    pub name: String,
    /// Disabled integrations are refused (rule 2).
    pub active: bool,
    /// May request tokens without `sub` (rule 6).
    pub allow_application_tokens: bool,
    /// Refuses assertions without `jti` (rule 5).
    pub require_jti: bool,
    /// The scopes this integration may request (rule 7).
    pub scopes: Vec<String>,
    /// The scopes an authorization request without `scope` gets.
    pub default_scopes: Vec<String>,
    /// Where the authorization endpoint may send the user back.
    pub redirect_uris: Vec<String>,
    /// The resources (RFC 8707) it may ask tokens for: their audiences.
    pub resources: Vec<String>,
    /// The argon2id hash of its client secret: a confidential client. Without one it
    /// is a public client, whose authorization codes PKCE must bind.
    pub client_secret_hash: Option<String>,
    /// The public keys that may sign its assertions (rule 1).
    pub keys: Vec<IntegrationKey>,
}

/// One public key of an integration.
#[derive(Debug, Clone)]
pub struct IntegrationKey {
    /// The key id: the JWK's own `kid` or the RFC 7638 thumbprint.
    pub kid: String,
    /// The parsed key.
    pub public_key: PublicKey,
    /// Disabled keys verify nothing.
    pub active: bool,
}

/// A person in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user id (a UUID), the assertion's `sub`.
    pub id: String,
    /// Disabled users get no tokens.
    pub active: bool,
}

/// A user's consent that an integration may act for them with these scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The scopes consented to.
    pub scopes: Vec<String>,
}

/// Splits a space-separated scope string into its scopes, dropping duplicates.
pub fn split_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in scope.split_ascii_whitespace() {
        if !out.iter().any(|known| known == scope) {
            out.push(scope.to_owned());
        }
    }
    out
}
