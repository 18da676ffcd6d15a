//! Opening the database and applying migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Store, StoreError};

/// How long a connection waits for a lock held by another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pool size for file databases (SQLite serialises writers; readers run in parallel under WAL).
const FILE_POOL_SIZE: u32 = 8;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Open the database at `url` and apply the embedded migrations.
    ///
    /// Accepted URLs: `sqlite://PATH` / `sqlite:PATH` (the file and its parent
    /// directory are created if missing; relative paths are relative to the
    /// process working directory) and `sqlite::memory:` (a private in-memory
    /// database that lives as long as this `Store` and its clones).
    /// File databases use WAL journaling, `synchronous=NORMAL`, foreign keys
    /// and a busy timeout.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            });
        }
        let connect_err = |source| StoreError::Connect {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_err)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let pool = if is_in_memory(url) {
            // An in-memory database vanishes with its last connection: keep exactly
            // one connection open for the life of the pool.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(connect_err)?
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
                .map_err(connect_err)?
        };

        MIGRATOR.run(&pool).await?;
        tracing::info!(url, "database opened and migrated");
        Ok(Store { pool })
    }

    /// Close every connection in the pool, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Run a trivial query; for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("ping"))?;
        Ok(())
    }
}

/// Does this SQLite URL name an in-memory database?
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_database_uses_wal_and_foreign_keys() {
        let dir = std::env::temp_dir().join(format!("vaani-store-wal-{}", crate::new_id()));
        let path = dir.join("nested").join("vaani.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert!(path.exists(), "database file and parent dir are created");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
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
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // Migrations ran on the one connection that keeps the database alive.
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(tables, 1);
    }

    #[tokio::test]
    async fn postgres_url_is_not_supported_yet() {
        let err = Store::connect("postgres://localhost/vaani")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err}");
    }
}
