//! The tenant key-value store behind the `kv` interface.

use std::collections::HashMap;
use std::sync::Mutex;

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key is empty, too long or has control characters.
    #[error("invalid key")]
    InvalidKey,
    /// The value is too large.
    #[error("value too large")]
    TooLarge,
    /// The tenant's store is full.
    #[error("key-value quota exceeded")]
    QuotaExceeded,
    /// The store cannot be reached.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// A tenant's key-value store. One store per tenant; the sandbox has already
/// checked key and value sizes before calling it. Implementations must be quick
/// (they run inside a plugin event) and must not panic.
pub trait KvStore: Send + Sync {
    /// Reads a value.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Writes a value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Deletes a key; deleting a missing key succeeds.
    fn delete(&self, key: &str) -> Result<(), KvError>;
}

/// Size limits of a [`MemoryKv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryKvLimits {
    /// Most keys.
    pub max_keys: usize,
    /// Most bytes of keys plus values.
    pub max_total_bytes: usize,
}

impl Default for MemoryKvLimits {
    fn default() -> Self {
        MemoryKvLimits {
            max_keys: 10_000,
            max_total_bytes: 50 << 20,
        }
    }
}

/// An in-memory [`KvStore`] for one tenant, bounded by [`MemoryKvLimits`].
#[derive(Debug, Default)]
pub struct MemoryKv {
    limits: MemoryKvLimits,
    state: Mutex<MemoryKvState>,
}

#[derive(Debug, Default)]
struct MemoryKvState {
    entries: HashMap<String, Vec<u8>>,
    total_bytes: usize,
}

impl MemoryKv {
    /// An empty store with the default limits (10 000 keys, 50 MiB).
    pub fn new() -> Self {
        Self::with_limits(MemoryKvLimits::default())
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: MemoryKvLimits) -> Self {
        MemoryKv {
            limits,
            state: Mutex::new(MemoryKvState::default()),
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.lock().map(|s| s.entries.len()).unwrap_or(0)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryKvState>, KvError> {
        self.state
            .lock()
            .map_err(|_| KvError::Unavailable("store lock poisoned".to_string()))
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock()?.entries.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut state = self.lock()?;
        let old = state.entries.get(key).map(|v| key.len() + v.len());
        if old.is_none() && state.entries.len() >= self.limits.max_keys {
            return Err(KvError::QuotaExceeded);
        }
        let new_total = state.total_bytes - old.unwrap_or(0) + key.len() + value.len();
        if new_total > self.limits.max_total_bytes {
            return Err(KvError::QuotaExceeded);
        }
        state.entries.insert(key.to_string(), value.to_vec());
        state.total_bytes = new_total;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        let mut state = self.lock()?;
        if let Some(v) = state.entries.remove(key) {
            state.total_bytes -= key.len() + v.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete_round_trip() {
        let kv = MemoryKv::new();
        assert_eq!(kv.get("a").unwrap(), None);
        kv.set("a", b"1").unwrap();
        kv.set("a", b"22").unwrap();
        assert_eq!(kv.get("a").unwrap(), Some(b"22".to_vec()));
        assert_eq!(kv.len(), 1);
        kv.delete("a").unwrap();
        kv.delete("a").unwrap();
        assert!(kv.is_empty());
    }

    #[test]
    fn limits_on_keys_and_bytes() {
        let kv = MemoryKv::with_limits(MemoryKvLimits {
            max_keys: 2,
            max_total_bytes: 11,
        });
        kv.set("a", b"1").unwrap();
        kv.set("b", b"1").unwrap();
        assert_eq!(kv.set("c", b"1"), Err(KvError::QuotaExceeded));
        // Overwriting an existing key is allowed while within the byte budget.
        kv.set("a", b"12345678").unwrap();
        assert_eq!(kv.set("a", b"123456789"), Err(KvError::QuotaExceeded));
        kv.delete("b").unwrap();
        kv.set("a", b"123456789").unwrap();
    }
}
