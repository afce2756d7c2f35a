//! Where a store lives and how to open one: a [`StoreLocation`] from the data
//! directory or the `database` URL, and [`open`], the one way to get a store.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{Store, StoreResult, postgres, sqlite};

/// Where the server keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `<dir>/jwtgrant.db`: a SQLite file of this instance's own.
    DataDir(PathBuf),
    /// A `sqlite:` URL.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL: several instances may share it.
    Postgres(String),
}

/// A `database` URL of no backend jwtgrant has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a sqlite:// or postgres:// URL")]
pub struct UnsupportedUrl;

impl StoreLocation {
    /// The store a `database` URL names, by its scheme.
    pub fn from_url(url: impl Into<String>) -> Result<Self, UnsupportedUrl> {
        let url = url.into();
        if url.starts_with("sqlite:") {
            Ok(StoreLocation::Sqlite(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(url))
        } else {
            Err(UnsupportedUrl)
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Whether to run the migrations not yet applied; without, a shared database
    /// that lacks some is refused. A SQLite file, which one instance owns, is
    /// always migrated.
    pub migrate: bool,
    /// The most connections to hold; `None`: 16 on PostgreSQL, 4 readers beside
    /// the one writer on SQLite.
    pub max_connections: Option<u32>,
    /// A schema of its own on PostgreSQL (created if missing), e.g. for tests;
    /// SQLite, one file per store, has no use for it.
    pub schema: Option<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            migrate: true,
            max_connections: None,
            schema: None,
        }
    }
}

impl OpenOptions {
    /// The defaults, migrating or not.
    pub fn migrate(migrate: bool) -> Self {
        OpenOptions {
            migrate,
            ..OpenOptions::default()
        }
    }
}

/// Opens (creating if needed) the store at `location`.
pub async fn open(location: &StoreLocation, options: &OpenOptions) -> StoreResult<Arc<dyn Store>> {
    Ok(match location {
        StoreLocation::DataDir(dir) => Arc::new(sqlite::open_data_dir(dir, options).await?),
        StoreLocation::Sqlite(url) => Arc::new(sqlite::open_url(url, options).await?),
        StoreLocation::Postgres(url) => Arc::new(postgres::open(url, options).await?),
    })
}
