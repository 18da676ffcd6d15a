//! Shared by the store test suites: a fresh PostgreSQL database per test, and a macro that
//! runs a test body on SQLite (in memory) and on PostgreSQL.
//!
//! PostgreSQL is required: the server named by `VAANI_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, set up by `scripts/setup.sh` / `make test`)
//! must accept connections and allow `CREATE DATABASE`. A test that cannot reach it fails with
//! a message saying so; it is never skipped.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use vaani_store::Store;

/// The environment variable naming the PostgreSQL server (a URL to an existing database,
/// whose user may create databases).
pub const POSTGRES_URL_VAR: &str = "VAANI_TEST_POSTGRES_URL";
/// The server used when [`POSTGRES_URL_VAR`] is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the administrative database tests create their databases from.
pub fn admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A PostgreSQL database created for one test and dropped (`WITH (FORCE)`, so open pools do
/// not keep it alive) when this guard is dropped, also when the test panics.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `vaani_test_<uuid>` on the test server. Panics, saying why, if the server
    /// cannot be reached or refuses.
    pub async fn create() -> TestDatabase {
        let admin_url = admin_url();
        let name = format!("vaani_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a URL ({e})"));
        url.set_path(&format!("/{name}"));
        TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    /// The URL of this test's database, for [`Store::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`vaani_test_…`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: drop the database
        // from a thread with a runtime of its own, and wait for it.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                let mut admin = admin_connection(&admin_url).await;
                let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
                let _ = admin.close().await;
                dropped.map(drop)
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("DROP DATABASE {} failed: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// Does a database of this name exist on the test server?
pub async fn database_exists(name: &str) -> bool {
    let mut admin = admin_connection(&admin_url()).await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("reading pg_database");
    let _ = admin.close().await;
    count > 0
}

/// A connection to the administrative database; panics with a clear message if the server
/// is not there.
async fn admin_connection(admin_url: &str) -> PgConnection {
    let shown = vaani_store::redact_url(admin_url);
    let options = PgConnectOptions::from_str(admin_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={shown} is not a PostgreSQL URL: {e}"));
    PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {shown} ({e}). The store tests need a PostgreSQL \
             server that lets this user create databases: run scripts/setup.sh (or `make test`), \
             or point {POSTGRES_URL_VAR} at one."
            )
        })
}

/// A store on a fresh in-memory SQLite database.
pub async fn sqlite_memory_store() -> Store {
    Store::connect("sqlite::memory:")
        .await
        .expect("an in-memory SQLite store")
}

/// A store on a fresh PostgreSQL database, and the guard that drops the database.
pub async fn postgres_store() -> (Store, TestDatabase) {
    let db = TestDatabase::create().await;
    let store = Store::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database {}: {e}", db.name()));
    (store, db)
}

/// Runs each listed `async fn(Store)` twice: in module `sqlite` on a fresh `sqlite::memory:`
/// store, and in module `postgres` on a fresh PostgreSQL database (dropped afterwards).
#[allow(unused_macros)] // not every suite uses it
macro_rules! on_sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::sqlite_memory_store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _db) = $crate::common::postgres_store().await;
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

/// Stores tenants `a` and `b` (active, created at 1 s).
pub async fn add_tenants(store: &Store) {
    for id in ["a", "b"] {
        store
            .upsert_tenant(&vaani_store::Tenant {
                id: id.to_owned(),
                name: format!("Tenant {id}"),
                status: vaani_store::TenantStatus::Active,
                created_at_ms: 1_000,
            })
            .await
            .unwrap();
    }
}
