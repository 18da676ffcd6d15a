//! Which node this store handle writes for: several vaani servers (nodes) may share one
//! PostgreSQL database, and each call row says which node runs it, so that crash recovery
//! ([`Store::mark_unfinished_calls_failed`]) fails only the calls this node left open.

use std::sync::Arc;

use crate::Store;

impl Store {
    /// This handle (and its clones made afterwards), stamping the calls it inserts with
    /// `node_id` and recovering only that node's calls. Without it calls are stored with no
    /// node (as before nodes existed).
    pub fn with_node_id(mut self, node_id: impl Into<String>) -> Store {
        self.node_id = Some(Arc::from(node_id.into()));
        self
    }

    /// The node this handle writes for, if one was set.
    pub fn node_id(&self) -> Option<&str> {
        self.node_id.as_deref()
    }
}
