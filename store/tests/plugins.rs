//! Plugin versions: numbered per tenant, stored once per content hash, activated and rolled
//! back, and never visible to another tenant.

#[macro_use]
mod common;

use common::add_tenants;

use vaani_store::{NewPlugin, PluginArtifact, PluginBytes, Scope, Store, StoreError};

fn tenant(id: &str) -> Scope {
    Scope::Tenant(id.to_owned())
}

on_sqlite_and_postgres!(
    versions_are_numbered_per_tenant_in_upload_order,
    the_same_bytes_are_stored_once_per_tenant,
    bytes_and_artifact_round_trip_and_the_artifact_can_be_replaced,
    activation_and_roll_back_walk_the_history,
    a_tenant_cannot_see_or_activate_another_tenants_plugin,
    a_plugin_needs_an_existing_tenant,
    a_tenant_without_plugins_has_none_active,
);

/// A plugin of `tenant_id` whose bytes are `wasm`.
fn plugin(tenant_id: &str, wasm: &[u8]) -> NewPlugin {
    NewPlugin {
        tenant_id: tenant_id.to_owned(),
        name: "clinic".to_owned(),
        plugin_version: "1.0.0".to_owned(),
        world_version: "0.3.0".to_owned(),
        content_hash: wasm.iter().map(|b| format!("{b:02x}")).collect(),
        info: serde_json::json!({"name": "clinic", "version": "1.0.0", "schemas": []}),
        wasm: wasm.to_vec(),
        artifact: None,
    }
}

fn artifact(bytes: &[u8], engine: &str) -> PluginArtifact {
    PluginArtifact {
        bytes: bytes.to_vec(),
        artifact_hash: format!("artifact-hash-{}", bytes.len()),
        compatibility_hash: engine.to_owned(),
    }
}

async fn versions_are_numbered_per_tenant_in_upload_order(store: Store) {
    add_tenants(&store).await;
    let a1 = store.add_plugin(&plugin("a", b"one"), 10).await.unwrap();
    let a2 = store.add_plugin(&plugin("a", b"two"), 20).await.unwrap();
    let b1 = store.add_plugin(&plugin("b", b"one"), 30).await.unwrap();
    assert!(a1.created && a2.created && b1.created);
    assert_eq!(a1.version.version_number, 1);
    assert_eq!(a2.version.version_number, 2);
    assert_eq!(b1.version.version_number, 1, "numbers are per tenant");
    assert_eq!(a2.version.size_bytes, 3);
    assert_eq!(a2.version.created_at_ms, 20);
    assert_eq!(a2.version.info["name"], "clinic");
    assert!(!a1.version.active, "uploading does not activate");

    let listed = store.list_plugins(Some("a")).await.unwrap();
    let numbers: Vec<i64> = listed.iter().map(|v| v.version_number).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert_eq!(listed[0], a2.version);
}

async fn the_same_bytes_are_stored_once_per_tenant(store: Store) {
    add_tenants(&store).await;
    let first = store.add_plugin(&plugin("a", b"same"), 10).await.unwrap();
    let again = store.add_plugin(&plugin("a", b"same"), 20).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.version, first.version);
    assert_eq!(store.list_plugins(Some("a")).await.unwrap().len(), 1);
    // Another tenant uploading the same bytes gets its own version.
    let other = store.add_plugin(&plugin("b", b"same"), 30).await.unwrap();
    assert!(other.created);
    assert_ne!(other.version.id, first.version.id);
}

async fn bytes_and_artifact_round_trip_and_the_artifact_can_be_replaced(store: Store) {
    add_tenants(&store).await;
    let mut new = plugin("a", b"\0asm\x01\0\0\0binary");
    new.artifact = Some(artifact(b"\x7fELF-old", "engine-1"));
    let added = store.add_plugin(&new, 10).await.unwrap();
    let id = added.version.id;
    assert_eq!(
        store.plugin_bytes("a", &id).await.unwrap(),
        Some(PluginBytes {
            wasm: new.wasm.clone(),
            artifact: new.artifact.clone(),
        })
    );

    let recompiled = artifact(b"\x7fELF-new-engine", "engine-2");
    store
        .set_plugin_artifact("a", &id, &recompiled)
        .await
        .unwrap();
    let bytes = store.plugin_bytes("a", &id).await.unwrap().unwrap();
    assert_eq!(bytes.artifact, Some(recompiled.clone()));
    assert_eq!(bytes.wasm, new.wasm);

    let missing = store
        .set_plugin_artifact("a", "no-such-plugin", &recompiled)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    // Stored without an artifact: none comes back.
    let bare = store.add_plugin(&plugin("a", b"bare"), 20).await.unwrap();
    let bytes = store.plugin_bytes("a", &bare.version.id).await.unwrap();
    assert_eq!(bytes.unwrap().artifact, None);
}

async fn activation_and_roll_back_walk_the_history(store: Store) {
    add_tenants(&store).await;
    let v1 = store
        .add_plugin(&plugin("a", b"one"), 10)
        .await
        .unwrap()
        .version;
    let v2 = store
        .add_plugin(&plugin("a", b"two"), 20)
        .await
        .unwrap()
        .version;
    let v3 = store
        .add_plugin(&plugin("a", b"three"), 30)
        .await
        .unwrap()
        .version;
    assert_eq!(store.active_plugin("a").await.unwrap(), None);
    assert_eq!(store.roll_back_plugin("a", 35).await.unwrap(), None);

    assert!(store.activate_plugin("a", &v1.id, 40).await.unwrap().active);
    store.activate_plugin("a", &v2.id, 50).await.unwrap();
    // Activating the active version again changes nothing (no extra history entry).
    store.activate_plugin("a", &v2.id, 55).await.unwrap();
    store.activate_plugin("a", &v3.id, 60).await.unwrap();
    let active = store.active_plugin("a").await.unwrap().unwrap();
    assert_eq!(active.id, v3.id);
    assert!(active.active);
    let flags: Vec<(i64, bool)> = store
        .list_plugins(Some("a"))
        .await
        .unwrap()
        .iter()
        .map(|v| (v.version_number, v.active))
        .collect();
    assert_eq!(flags, [(3, true), (2, false), (1, false)]);

    let back = store.roll_back_plugin("a", 70).await.unwrap().unwrap();
    assert_eq!(back.id, v2.id);
    assert!(back.active);
    assert_eq!(store.active_plugin("a").await.unwrap().unwrap().id, v2.id);
    let back = store.roll_back_plugin("a", 80).await.unwrap().unwrap();
    assert_eq!(back.id, v1.id, "a second roll-back goes further back");
    assert_eq!(
        store.roll_back_plugin("a", 90).await.unwrap(),
        None,
        "nothing before the first activation"
    );
    assert_eq!(store.active_plugin("a").await.unwrap().unwrap().id, v1.id);

    // Activating after roll-backs starts from the version now active.
    store.activate_plugin("a", &v3.id, 100).await.unwrap();
    let back = store.roll_back_plugin("a", 110).await.unwrap().unwrap();
    assert_eq!(back.id, v1.id);
}

async fn a_tenant_cannot_see_or_activate_another_tenants_plugin(store: Store) {
    add_tenants(&store).await;
    let a1 = store
        .add_plugin(&plugin("a", b"one"), 10)
        .await
        .unwrap()
        .version;
    store.activate_plugin("a", &a1.id, 20).await.unwrap();

    assert_eq!(store.get_plugin(&tenant("b"), &a1.id).await.unwrap(), None);
    assert_eq!(
        store.get_plugin(&Scope::Operator, &a1.id).await.unwrap(),
        Some(store.active_plugin("a").await.unwrap().unwrap()),
        "the operator sees every tenant's plugins"
    );
    assert_eq!(store.plugin_bytes("b", &a1.id).await.unwrap(), None);
    assert!(store.list_plugins(Some("b")).await.unwrap().is_empty());
    assert!(matches!(
        store.activate_plugin("b", &a1.id, 30).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .set_plugin_artifact("b", &a1.id, &artifact(b"x", "e"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.roll_back_plugin("b", 40).await.unwrap(), None);
    assert_eq!(store.active_plugin("b").await.unwrap(), None);
    // A's plugin is untouched by B's attempts.
    let active = store.active_plugin("a").await.unwrap().unwrap();
    assert_eq!(active.id, a1.id);
    assert_eq!(
        store
            .plugin_bytes("a", &a1.id)
            .await
            .unwrap()
            .unwrap()
            .artifact,
        None
    );

    let b1 = store
        .add_plugin(&plugin("b", b"bee"), 50)
        .await
        .unwrap()
        .version;
    store.activate_plugin("b", &b1.id, 60).await.unwrap();
    let all: Vec<(String, String)> = store
        .active_plugins()
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.tenant_id, v.id))
        .collect();
    assert_eq!(all, [("a".to_owned(), a1.id), ("b".to_owned(), b1.id)]);
}

async fn a_plugin_needs_an_existing_tenant(store: Store) {
    let refused = store.add_plugin(&plugin("ghost", b"one"), 10).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { what: "tenant", .. })),
        "{refused:?}"
    );
}

async fn a_tenant_without_plugins_has_none_active(store: Store) {
    add_tenants(&store).await;
    assert!(store.active_plugins().await.unwrap().is_empty());
    assert!(store.list_plugins(Some("a")).await.unwrap().is_empty());
    assert_eq!(store.get_plugin(&tenant("a"), "nope").await.unwrap(), None);
}
