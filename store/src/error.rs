//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names a backend this build does not support.
    #[error(
        "unsupported database URL {url:?}: expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl {
        /// The URL as given, with any password replaced by `***` ([`crate::redact_url`]).
        url: String,
    },
    /// The directory for a SQLite database file could not be created.
    #[error("cannot create database directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Opening the database failed.
    #[error("cannot open database {url}: {source}")]
    Connect {
        /// The URL as given, with any password replaced by `***` ([`crate::redact_url`]).
        url: String,
        /// The driver error.
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("{operation} failed: {source}")]
    Query {
        /// The repository method that ran the query, e.g. `insert_call`.
        operation: &'static str,
        /// The driver error.
        source: sqlx::Error,
    },
    /// The row to update, or a row referenced by a new row, does not exist
    /// (for this tenant).
    #[error("{what} {id:?} not found")]
    NotFound {
        /// What was looked for, e.g. `call` or `tenant`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// Concurrent writers kept taking what this write needed (a plugin version number, the
    /// activation to roll back); trying again later may succeed.
    #[error("{operation} lost to concurrent writes; try again")]
    Busy {
        /// The repository method.
        operation: &'static str,
    },
    /// The row to create exists already, or the thing to claim belongs to someone else
    /// (a tenant id in use, a phone number another tenant owns).
    #[error("{what} {id:?} is already taken")]
    Conflict {
        /// What was to be created or claimed, e.g. `tenant` or `phone number`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A stored value could not be decoded (bad enum text or JSON).
    #[error("column {column} holds an invalid value {value:?}")]
    InvalidValue {
        /// The column.
        column: &'static str,
        /// The stored text.
        value: String,
    },
}

impl StoreError {
    /// Wrap a driver error from the repository method `operation`.
    pub(crate) fn query(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { operation, source }
    }

    /// Map a driver error to `NotFound` if it is a foreign-key violation, else `Query`.
    pub(crate) fn missing_parent(
        operation: &'static str,
        what: &'static str,
        id: &str,
    ) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| {
            if crate::is_foreign_key_violation(&source) {
                StoreError::NotFound {
                    what,
                    id: id.to_owned(),
                }
            } else {
                StoreError::Query { operation, source }
            }
        }
    }
}
