//! Opening the database and applying migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Pool, Store, StoreError};

/// How long a connection waits for a lock held by another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pool size for file databases (SQLite serialises writers; readers run in parallel under WAL).
const FILE_POOL_SIZE: u32 = 8;
/// Pool size for PostgreSQL: enough for the call tasks' writes and the API's reads on one node
/// without crowding a server that several nodes share (PostgreSQL's default limit is 100).
const POSTGRES_POOL_SIZE: u32 = 10;
/// How long opening the store, or taking a pooled connection, may wait for PostgreSQL.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, as numbered migrations written to run unchanged on SQLite and PostgreSQL.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What replaces a password in a URL shown in logs and errors.
const REDACTED_PASSWORD: &str = "***";

impl Store {
    /// Open the database at `url` and apply the embedded migrations.
    ///
    /// Accepted URLs: `sqlite://PATH` / `sqlite:PATH` (the file and its parent
    /// directory are created if missing; relative paths are relative to the
    /// process working directory), `sqlite::memory:` (a private in-memory
    /// database that lives as long as this `Store` and its clones), and
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]` (or `postgresql://`; the
    /// database must exist).
    /// SQLite file databases use WAL journaling, `synchronous=NORMAL`, foreign keys
    /// and a busy timeout. Errors and logs show the URL with its password redacted.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(connect_sqlite(url).await?)
        } else if is_postgres(url) {
            Pool::Postgres(connect_postgres(url).await?)
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let backend = match &pool {
            Pool::Sqlite(pool) => {
                MIGRATOR.run(pool).await?;
                "sqlite"
            }
            Pool::Postgres(pool) => {
                MIGRATOR.run(pool).await?;
                "postgres"
            }
        };
        tracing::info!(url = %redact_url(url), backend, "database opened and migrated");
        Ok(Store {
            pool,
            node_id: None,
        })
    }

    /// Close every connection in the pool, waiting for queries in flight.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Run a trivial query; for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))
            .map_err(StoreError::query("ping"))
    }
}

/// Open a SQLite database (see [`Store::connect`]).
async fn connect_sqlite(url: &str) -> Result<sqlx::SqlitePool, StoreError> {
    let connect_err = |source| StoreError::Connect {
        url: redact_url(url),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(connect_err)?
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);

    if is_in_memory(url) {
        // An in-memory database vanishes with its last connection: keep exactly
        // one connection open for the life of the pool.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(connect_err)
    } else {
        let path = options.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(connect_err)
    }
}

/// Open a pool on a PostgreSQL server (see [`Store::connect`]).
async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, StoreError> {
    let connect_err = |source| StoreError::Connect {
        url: redact_url(url),
        source,
    };
    let options = PgConnectOptions::from_str(url).map_err(connect_err)?;
    let opened = PgPoolOptions::new()
        .max_connections(POSTGRES_POOL_SIZE)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await;
    match opened {
        Ok(pool) => Ok(pool),
        // The pool retries a refused connection (the server may be starting) until its
        // deadline, then reports only the timeout: one direct attempt names the cause.
        Err(sqlx::Error::PoolTimedOut) => {
            let attempt = tokio::time::timeout(
                POSTGRES_ACQUIRE_TIMEOUT,
                sqlx::PgConnection::connect_with(&options),
            )
            .await;
            let source = match attempt {
                Ok(Err(cause)) => cause,
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    sqlx::Error::PoolTimedOut
                }
                Err(_) => sqlx::Error::PoolTimedOut,
            };
            Err(connect_err(source))
        }
        Err(other) => Err(connect_err(other)),
    }
}

/// Does this URL name a PostgreSQL server?
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Does this SQLite URL name an in-memory database?
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// `url` as it may be shown in logs and errors: a password, in the user-info part
/// (`postgres://user:secret@host/db`) or as a `password=` query parameter, is replaced by
/// `***`. A URL that does not parse but might hold a password (it has an `@` or mentions
/// `password`) is shown as its scheme and `***` only. Other URLs are returned unchanged.
pub fn redact_url(url: &str) -> String {
    let might_hold_password = url.contains('@') || url.to_ascii_lowercase().contains("password");
    if !might_hold_password {
        return url.to_owned();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://{REDACTED_PASSWORD}"),
            None => REDACTED_PASSWORD.to_owned(),
        };
    };
    let mut changed = false;
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have a user-info part; this one has a password.
        changed |= parsed.set_password(Some(REDACTED_PASSWORD)).is_ok();
    }
    let has_password_parameter = parsed
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"));
    if has_password_parameter {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") {
                    REDACTED_PASSWORD.to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        // The query serialiser percent-encodes `*`; show the marker as written.
        parsed.to_string().replace("%2A%2A%2A", REDACTED_PASSWORD)
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Store {
        /// The SQLite pool, for tests that inspect connection settings.
        fn sqlite_pool(&self) -> &sqlx::SqlitePool {
            match &self.pool {
                Pool::Sqlite(pool) => pool,
                Pool::Postgres(_) => panic!("not a SQLite store"),
            }
        }
    }

    #[tokio::test]
    async fn file_database_uses_wal_and_foreign_keys() {
        let dir = std::env::temp_dir().join(format!("vaani-store-wal-{}", crate::new_id()));
        let path = dir.join("nested").join("vaani.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert!(path.exists(), "database file and parent dir are created");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.sqlite_pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.sqlite_pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(store.sqlite_pool())
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn in_memory_database_survives_idle_pool() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.sqlite_pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // Migrations ran on the one connection that keeps the database alive.
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'",
        )
        .fetch_one(store.sqlite_pool())
        .await
        .unwrap();
        assert_eq!(tables, 1);
    }

    #[tokio::test]
    async fn other_schemes_are_refused_with_the_password_redacted() {
        let err = Store::connect("mysql://vaani:hunter2@db.example/vaani")
            .await
            .unwrap_err();
        let StoreError::UnsupportedUrl { url } = &err else {
            panic!("expected UnsupportedUrl, got {err}");
        };
        assert_eq!(url, "mysql://vaani:***@db.example/vaani");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_postgres_url_is_a_connect_error_without_the_password() {
        let err = Store::connect("postgres://vaani:hunter2@127.0.0.1:5432/vaani?sslmode=bogus")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Connect { .. }), "{err}");
        let shown = err.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://vaani:***@127.0.0.1:5432/vaani"),
            "{shown}"
        );
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        let cases = [
            (
                "postgres://vaani:s3cr%40t@db.example:5432/vaani",
                "postgres://vaani:***@db.example:5432/vaani",
            ),
            (
                "postgresql://vaani:pw@db.example/vaani?sslmode=require",
                "postgresql://vaani:***@db.example/vaani?sslmode=require",
            ),
            (
                "postgres://db.example/vaani?user=vaani&password=pw&sslmode=require",
                "postgres://db.example/vaani?user=vaani&password=***&sslmode=require",
            ),
            // Not a valid URL (an unencoded `/` in the password): only the scheme is shown.
            ("postgres://vaani:pa/ss@db.example/vaani", "postgres://***"),
            // Nothing secret: unchanged, byte for byte.
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            ("sqlite://data/vaani.db", "sqlite://data/vaani.db"),
            ("sqlite:relative.db?mode=rwc", "sqlite:relative.db?mode=rwc"),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
