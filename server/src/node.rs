//! This server's node id: its name among the servers (nodes) that share one database. Calls are
//! stored with it, and crash recovery at start fails only the calls of this node
//! ([`vaani_store::Store::mark_unfinished_calls_failed`]).

/// Used when neither `[store] node_id` nor a host name is there.
const FALLBACK_NODE_ID: &str = "vaani";

/// Where Linux keeps the host name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// Longest node id taken from the host name (as for `[store] node_id`).
const MAX_NODE_ID_LEN: usize = vaani_config::MAX_NODE_ID_LEN;

/// `[store] node_id` when set, else the machine's host name (stable across restarts of the same
/// machine or container), else `vaani`.
pub fn node_id(configured: Option<&str>) -> String {
    if let Some(id) = configured {
        return id.to_owned();
    }
    std::fs::read_to_string(HOSTNAME_FILE)
        .ok()
        .and_then(|name| from_host_name(&name))
        .unwrap_or_else(|| FALLBACK_NODE_ID.to_owned())
}

/// A host name as a node id: trimmed and bounded; `None` when empty.
fn from_host_name(name: &str) -> Option<String> {
    let name: String = name.trim().chars().take(MAX_NODE_ID_LEN).collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_id_wins() {
        assert_eq!(node_id(Some("node-a")), "node-a");
    }

    #[test]
    fn the_default_is_the_host_name_and_the_same_each_time() {
        let id = node_id(None);
        assert!(!id.is_empty());
        assert_eq!(id, node_id(None), "stable across calls (and so restarts)");
        if let Ok(name) = std::fs::read_to_string(HOSTNAME_FILE) {
            assert_eq!(Some(id), from_host_name(&name));
        }
    }

    #[test]
    fn a_host_name_is_trimmed_and_bounded() {
        assert_eq!(from_host_name("box-1\n").as_deref(), Some("box-1"));
        assert_eq!(from_host_name(" \n"), None);
        let long = "h".repeat(100);
        assert_eq!(
            from_host_name(&long).map(|n| n.len()),
            Some(MAX_NODE_ID_LEN)
        );
    }
}
