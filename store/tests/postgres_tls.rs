//! PostgreSQL over TLS: a store URL with `sslmode=require` gets an encrypted connection (the
//! build carries rustls), as managed PostgreSQL services demand.

mod common;

use sqlx::Connection;
use vaani_store::{Store, Tenant, TenantStatus};

/// Whether the test server has TLS turned on (`SHOW ssl`).
async fn server_has_tls() -> bool {
    let mut admin = sqlx::postgres::PgConnection::connect(&common::admin_url())
        .await
        .expect("the test PostgreSQL server");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .expect("SHOW ssl");
    let _ = admin.close().await;
    ssl == "on"
}

#[tokio::test]
async fn a_store_url_can_require_tls() {
    let db = common::TestDatabase::create().await;
    let separator = if db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}sslmode=require", db.url());
    let connected = Store::connect(&url).await;
    if server_has_tls().await {
        let store = connected.unwrap_or_else(|e| panic!("sslmode=require failed: {e}"));
        // The store works over it.
        store
            .upsert_tenant(&Tenant {
                id: "a".to_owned(),
                name: "Tenant a".to_owned(),
                status: TenantStatus::Active,
                created_at_ms: 1,
            })
            .await
            .unwrap();
        assert_eq!(store.list_tenants().await.unwrap().len(), 1);
        store.close().await;
        // And the server saw this database's connections encrypted.
        let mut admin = sqlx::postgres::PgConnection::connect(&common::admin_url())
            .await
            .unwrap();
        let store = Store::connect(&url).await.unwrap();
        let encrypted: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE a.datname = $1 AND s.ssl",
        )
        .bind(db.name())
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(encrypted >= 1, "no TLS connection to {}", db.name());
        store.close().await;
        let _ = admin.close().await;
    } else {
        // A server without TLS refuses sslmode=require: the error says so.
        let error = connected.expect_err("sslmode=require without server TLS");
        let shown = error.to_string().to_lowercase();
        assert!(shown.contains("ssl") || shown.contains("tls"), "{shown}");
    }
}
