//! The plugin key-value store of one tenant: served from memory, written through to the store.
//!
//! Plugins call `kv` inside an event, on the call's runtime, so reads must not wait for the
//! database: every key is loaded at start, and writes go to the store in order from one writer
//! task per tenant.

use std::sync::Arc;

use tokio::sync::mpsc;
use vaani_sandbox::{KvError, KvStore, MemoryKv};
use vaani_store::Store;

/// Pending writes per tenant before plugins are told the store is unavailable.
const WRITE_QUEUE: usize = 1024;

enum KvWrite {
    Set(String, Vec<u8>),
    Delete(String),
}

/// A tenant's [`KvStore`] backed by the database.
pub struct TenantKv {
    memory: MemoryKv,
    writes: mpsc::Sender<KvWrite>,
}

impl TenantKv {
    /// Loads the tenant's keys and starts its writer on the current runtime.
    pub async fn load(
        store: Store,
        tenant_id: String,
    ) -> Result<Arc<Self>, vaani_store::StoreError> {
        let memory = MemoryKv::new();
        for (key, value) in store.kv_list(&tenant_id).await? {
            if let Err(error) = memory.set(&key, &value) {
                tracing::warn!(tenant_id = %tenant_id, "stored key not loaded: {error}");
            }
        }
        let (writes, mut queue) = mpsc::channel::<KvWrite>(WRITE_QUEUE);
        tokio::spawn(async move {
            while let Some(write) = queue.recv().await {
                let result = match &write {
                    KvWrite::Set(key, value) => store.kv_set(&tenant_id, key, value).await,
                    KvWrite::Delete(key) => store.kv_delete(&tenant_id, key).await.map(|_| ()),
                };
                if let Err(error) = result {
                    tracing::error!(tenant_id = %tenant_id, "plugin key-value write lost: {error}");
                }
            }
        });
        Ok(Arc::new(Self { memory, writes }))
    }

    fn persist(&self, write: KvWrite) -> Result<(), KvError> {
        self.writes
            .try_send(write)
            .map_err(|_| KvError::Unavailable("too many writes pending".to_string()))
    }
}

impl KvStore for TenantKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.memory.get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.memory.set(key, value)?;
        self.persist(KvWrite::Set(key.to_string(), value.to_vec()))
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.memory.delete(key)?;
        self.persist(KvWrite::Delete(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with_tenant() -> Store {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        store
            .upsert_tenant(&vaani_store::Tenant {
                id: "t".to_string(),
                name: "T".to_string(),
                status: vaani_store::TenantStatus::Active,
                created_at_ms: 0,
            })
            .await
            .expect("tenant");
        store
    }

    async fn settle(store: &Store, key: &str, expected: Option<&[u8]>) {
        for _ in 0..100 {
            if store.kv_get("t", key).await.expect("get").as_deref() == expected {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("store never reached {expected:?} for {key}");
    }

    #[tokio::test]
    async fn writes_reach_the_store_and_survive_a_reload() {
        let store = store_with_tenant().await;
        let kv = TenantKv::load(store.clone(), "t".to_string())
            .await
            .expect("load");
        kv.set("visits", b"1").expect("set");
        kv.set("visits", b"2").expect("set");
        kv.set("gone", b"x").expect("set");
        kv.delete("gone").expect("delete");
        assert_eq!(kv.get("visits").expect("get").as_deref(), Some(&b"2"[..]));
        settle(&store, "visits", Some(b"2")).await;
        settle(&store, "gone", None).await;

        let reloaded = TenantKv::load(store, "t".to_string())
            .await
            .expect("reload");
        assert_eq!(
            reloaded.get("visits").expect("get").as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(reloaded.get("gone").expect("get"), None);
    }
}
