//! Clients known by their client ID metadata document (`--client-metadata-documents`):
//! the document fetched with the issuers' safe fetcher (no redirect at all, at most
//! 5 KiB), cached, and turned into a public client by the core under the template
//! integration. Only a `client_id` that is an http(s) URL and names no registered
//! integration is looked up here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jwtgrant_core::Integration;
use jwtgrant_core::client_metadata::{
    MAX_DOCUMENT_BYTES, client_from_document, is_document_client_id,
};
use jwtgrant_core::jwks::parse_jwks;

use crate::fetch::{FetchError, FetchPolicy, SafeFetcher};

/// How long a document is kept when its response says nothing, and the bounds on
/// what it may say.
const DEFAULT_CACHE_SECS: u64 = 300;
const MIN_CACHE_SECS: u64 = 60;
const MAX_CACHE_SECS: u64 = 24 * 3600;
/// Documents kept at most; beyond, the cache starts over (each costs one fetch).
const MAX_CACHED: usize = 10_000;

/// Why a document's client cannot be used; shown on the authorization endpoint's
/// error page, never as a redirect.
#[derive(Debug, thiserror::Error)]
pub enum ClientDocumentError {
    /// The document could not be fetched (not https, a redirect, too large, down).
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    /// The document breaks a rule.
    #[error(transparent)]
    Document(#[from] jwtgrant_core::client_metadata::DocumentError),
    /// Its `jwks_uri` serves no usable key.
    #[error("the client metadata document's jwks_uri has no usable key: {0}")]
    Keys(String),
}

/// The fetcher and the cache of documents' clients.
pub struct ClientDocuments {
    fetcher: SafeFetcher,
    cache: Mutex<HashMap<String, (Arc<Integration>, i64)>>,
}

impl std::fmt::Debug for ClientDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDocuments").finish_non_exhaustive()
    }
}

impl ClientDocuments {
    /// Documents fetched under `policy` (the issuers'), capped at 5 KiB.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let policy = FetchPolicy {
            max_bytes: policy.max_bytes.min(MAX_DOCUMENT_BYTES),
            ..policy
        };
        Ok(ClientDocuments {
            fetcher: SafeFetcher::without_redirects(policy)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `client_id` is one to look up here.
    pub fn names_a_document(client_id: &str) -> bool {
        is_document_client_id(client_id)
    }

    /// The client of the document at `url` under `template`, from the cache or
    /// fetched now.
    pub async fn client(
        &self,
        url: &str,
        template: &Integration,
        now: i64,
    ) -> Result<Arc<Integration>, ClientDocumentError> {
        if let Some((client, until)) = self.cached(url)
            && now < until
        {
            return Ok(client);
        }
        let fetched = self.fetcher.get(url).await?;
        let document = client_from_document(url, &fetched.body, template)?;
        let mut client = document.integration;
        let mut max_age = fetched.max_age;
        if let Some(jwks_uri) = &document.jwks_uri {
            // Fetched with the document, kept as long as the shorter-lived of the two.
            let jwks = self.fetcher.get(jwks_uri).await?;
            let set = parse_jwks(&jwks.body, &[])
                .map_err(|e| ClientDocumentError::Keys(e.to_string()))?;
            if set.keys.is_empty() {
                return Err(ClientDocumentError::Keys(
                    "none is an asymmetric signing key this server accepts".into(),
                ));
            }
            client.keys = set.keys;
            max_age = match (max_age, jwks.max_age) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let client = Arc::new(client);
        let keep = max_age
            .unwrap_or(DEFAULT_CACHE_SECS)
            .clamp(MIN_CACHE_SECS, MAX_CACHE_SECS);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            let until = now.saturating_add(i64::try_from(keep).unwrap_or(i64::MAX));
            cache.insert(url.to_owned(), (Arc::clone(&client), until));
        }
        Ok(client)
    }

    fn cached(&self, url: &str) -> Option<(Arc<Integration>, i64)> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(url)
            .map(|(client, until)| (Arc::clone(client), *until))
    }
}
