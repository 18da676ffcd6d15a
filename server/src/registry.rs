//! The runtime registry: which tenants run, which numbers route to them and which trunks admit
//! whom, as one immutable [`Snapshot`] that can be swapped whole.
//!
//! A call takes the snapshot (or the `Arc<TenantRuntime>` it picked from it) at admission and
//! keeps it for its life, so a later [`Registry::replace`] (a tenant's new plugin, a number
//! moved) applies to new calls only and never changes a call in progress. Reading is a clone of
//! an `Arc` under a short lock that is never held across an await.
//!
//! The snapshot is built from the database by [`crate::registry_loader`], at start and after
//! every API write that changes tenants, numbers or plugins.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use vaani_config::Config;

use crate::app::TenantRuntime;
use crate::inbound_auth::DigestGate;
use crate::routing::TrunkAdmission;

/// Where a dialled number goes.
#[derive(Debug, Clone)]
pub struct NumberRoute {
    pub tenant_id: String,
    pub trunk_id: String,
}

/// One consistent view of tenants, numbers and trunks; never changed once built.
#[derive(Default)]
pub struct Snapshot {
    /// Running tenants, by id (not suspended ones: their numbers answer `480`).
    pub tenants: HashMap<String, Arc<TenantRuntime>>,
    /// Source-address admission of every trunk.
    pub trunks: Vec<TrunkAdmission>,
    /// Dialled number (E.164) → tenant and trunk.
    pub numbers: HashMap<String, NumberRoute>,
    /// Digest checks of trunks with `[trunks.inbound_auth]`, by trunk id. Shared by `Arc` so a
    /// rebuilt snapshot can keep a gate (and so the nonces it issued) unchanged.
    pub auth_gates: HashMap<String, Arc<DigestGate>>,
}

impl Snapshot {
    /// A running tenant by id.
    pub fn tenant(&self, id: &str) -> Option<Arc<TenantRuntime>> {
        self.tenants.get(id).cloned()
    }
}

/// The current [`Snapshot`] behind a cheap swappable cell.
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
}

impl Registry {
    /// A registry serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The current snapshot; keep it for as long as one consistent view is needed (a call's
    /// life).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a whole snapshot (it is only ever swapped whole).
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `snapshot` current for everything that takes a snapshot from now on; holders of
    /// the previous one keep it until they drop it.
    pub fn replace(&self, snapshot: Snapshot) {
        let next = Arc::new(snapshot);
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The old snapshot is dropped after the lock is released (its last holder may be us).
        let _previous = std::mem::replace(&mut *current, next);
        drop(current);
    }
}

/// The source-address admission of every `[[trunks]]` entry.
pub(crate) fn trunk_admissions(config: &Config) -> Vec<TrunkAdmission> {
    config
        .trunks
        .iter()
        .map(|trunk| TrunkAdmission {
            id: trunk.id.clone(),
            allowed: trunk.allowed_cidrs.clone(),
            any_source: trunk.allowed_cidrs.is_empty() && trunk.inbound_auth.is_some(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tenant(id: &str, fallback: &str) -> Arc<TenantRuntime> {
        Arc::new(TenantRuntime {
            id: id.to_string(),
            trunk: "local".to_string(),
            numbers: vec!["+918000000001".to_string()],
            plugin: None,
            limits: Default::default(),
            kv: Arc::new(vaani_sandbox::MemoryKv::new()),
            fallback_text: fallback.to_string(),
            plugin_config_json: "{}".to_string(),
            ring_ms: 0,
            silence_timeout: None,
            max_call_duration: None,
            duration_warning: Duration::from_secs(30),
            duration_warning_text: String::new(),
            turns: Default::default(),
            llm: None,
            egress: None,
            transfer_targets: Default::default(),
            recording: Default::default(),
            call_limits: Default::default(),
        })
    }

    fn snapshot_with(fallback: &str, number: &str) -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot
            .tenants
            .insert("clinic".to_string(), tenant("clinic", fallback));
        snapshot.numbers.insert(
            number.to_string(),
            NumberRoute {
                tenant_id: "clinic".to_string(),
                trunk_id: "local".to_string(),
            },
        );
        snapshot
    }

    #[test]
    fn replacing_the_snapshot_leaves_what_was_taken_unchanged() {
        let registry = Registry::new(snapshot_with("old", "+918000000001"));
        let taken = registry.snapshot();
        let tenant_taken = taken.tenant("clinic").expect("tenant");

        registry.replace(snapshot_with("new", "+918000000002"));

        // What a call took at admission is what it keeps.
        assert_eq!(tenant_taken.fallback_text, "old");
        assert_eq!(taken.tenant("clinic").expect("tenant").fallback_text, "old");
        assert!(taken.numbers.contains_key("+918000000001"));
        assert!(!taken.numbers.contains_key("+918000000002"));
        // What is taken afterwards is the new snapshot.
        let now = registry.snapshot();
        assert_eq!(now.tenant("clinic").expect("tenant").fallback_text, "new");
        assert!(now.numbers.contains_key("+918000000002"));
        assert!(!now.numbers.contains_key("+918000000001"));
        assert!(!Arc::ptr_eq(&taken, &now));
    }

    #[test]
    fn the_previous_snapshot_is_freed_when_its_last_holder_drops_it() {
        let registry = Registry::new(snapshot_with("old", "+918000000001"));
        let taken = registry.snapshot();
        let weak = Arc::downgrade(&taken);
        registry.replace(snapshot_with("new", "+918000000001"));
        assert!(
            weak.upgrade().is_some(),
            "a holder keeps the old snapshot alive"
        );
        drop(taken);
        assert!(weak.upgrade().is_none(), "the registry does not keep it");
    }
}
