//! Tenant assets (audio prompts) and knowledge items: stored per tenant, never visible to
//! another.

#[macro_use]
mod common;

use common::add_tenants;

use vaani_store::{KnowledgeUpdate, Store, StoreError};

on_sqlite_and_postgres!(
    an_asset_round_trips_and_is_replaced_in_place,
    assets_belong_to_their_tenant,
    knowledge_items_are_added_changed_filtered_and_deleted,
    knowledge_items_belong_to_their_tenant,
);

/// `ms` milliseconds of an 8 kHz ramp that uses the whole 16-bit range (both signs).
fn audio(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| ((i * 997) % 65_536) as i32 - 32_768)
        .map(|s| s as i16)
        .collect()
}

async fn an_asset_round_trips_and_is_replaced_in_place(store: Store) {
    add_tenants(&store).await;
    let first = audio(1_500);
    let stored = store
        .put_asset("a", "greeting", &first, "hash-1", 10)
        .await
        .unwrap();
    assert_eq!(stored.duration_ms, 1_500);
    assert_eq!((stored.created_at_ms, stored.updated_at_ms), (10, 10));
    assert_eq!(
        store.asset_audio("a", "greeting").await.unwrap(),
        Some(first)
    );

    let second = audio(250);
    let replaced = store
        .put_asset("a", "greeting", &second, "hash-2", 20)
        .await
        .unwrap();
    assert_eq!(replaced.duration_ms, 250);
    assert_eq!(replaced.content_hash, "hash-2");
    assert_eq!(
        (replaced.created_at_ms, replaced.updated_at_ms),
        (10, 20),
        "replacing keeps the creation time"
    );
    assert_eq!(
        store.asset_audio("a", "greeting").await.unwrap(),
        Some(second)
    );
    assert_eq!(store.list_assets(Some("a")).await.unwrap(), [replaced]);

    store.delete_asset("a", "greeting").await.unwrap();
    assert_eq!(store.get_asset("a", "greeting").await.unwrap(), None);
    assert!(matches!(
        store.delete_asset("a", "greeting").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.put_asset("ghost", "x", &audio(10), "h", 1).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn assets_belong_to_their_tenant(store: Store) {
    add_tenants(&store).await;
    store
        .put_asset("a", "greeting", &audio(100), "a-hash", 10)
        .await
        .unwrap();
    assert_eq!(store.get_asset("b", "greeting").await.unwrap(), None);
    assert_eq!(store.asset_audio("b", "greeting").await.unwrap(), None);
    assert!(store.list_assets(Some("b")).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_asset("b", "greeting").await,
        Err(StoreError::NotFound { .. })
    ));
    // The same name in another tenant is another asset.
    store
        .put_asset("b", "greeting", &audio(200), "b-hash", 20)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_asset("a", "greeting")
            .await
            .unwrap()
            .unwrap()
            .content_hash,
        "a-hash"
    );
    let every: Vec<(String, i64)> = store
        .list_assets(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.tenant_id, a.duration_ms))
        .collect();
    assert_eq!(every, [("a".to_owned(), 100), ("b".to_owned(), 200)]);
}

async fn knowledge_items_are_added_changed_filtered_and_deleted(store: Store) {
    add_tenants(&store).await;
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let hours = store
        .add_knowledge_item("a", "Hours", "9 to 5", &tags(&["timings"]), 10)
        .await
        .unwrap();
    let prices = store
        .add_knowledge_item(
            "a",
            "Prices",
            "Consultation ₹500",
            &tags(&["fees", "faq"]),
            20,
        )
        .await
        .unwrap();
    assert_eq!(store.count_knowledge_items("a").await.unwrap(), 2);
    assert_eq!(store.count_knowledge_items("b").await.unwrap(), 0);
    let listed = store.list_knowledge_items(Some("a"), None).await.unwrap();
    assert_eq!(
        listed,
        [prices.clone(), hours.clone()],
        "newest change first"
    );
    let faq = store
        .list_knowledge_items(Some("a"), Some("faq"))
        .await
        .unwrap();
    assert_eq!(faq, std::slice::from_ref(&prices));

    let changed = store
        .update_knowledge_item(
            Some("a"),
            &hours.id,
            &KnowledgeUpdate {
                content: Some("9 to 6, closed Sunday".to_owned()),
                ..KnowledgeUpdate::default()
            },
            30,
        )
        .await
        .unwrap();
    assert_eq!(changed.title, "Hours", "untouched fields stay");
    assert_eq!(changed.content, "9 to 6, closed Sunday");
    assert_eq!(changed.tags, tags(&["timings"]));
    assert_eq!((changed.created_at_ms, changed.updated_at_ms), (10, 30));

    store
        .delete_knowledge_item(Some("a"), &prices.id)
        .await
        .unwrap();
    assert_eq!(
        store.list_knowledge_items(Some("a"), None).await.unwrap(),
        [changed]
    );
    assert!(matches!(
        store.delete_knowledge_item(Some("a"), &prices.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn knowledge_items_belong_to_their_tenant(store: Store) {
    add_tenants(&store).await;
    let item = store
        .add_knowledge_item("a", "Hours", "9 to 5", &[], 10)
        .await
        .unwrap();
    assert_eq!(
        store.get_knowledge_item(Some("b"), &item.id).await.unwrap(),
        None
    );
    assert!(
        store
            .list_knowledge_items(Some("b"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .update_knowledge_item(
                Some("b"),
                &item.id,
                &KnowledgeUpdate {
                    title: Some("Taken".to_owned()),
                    ..KnowledgeUpdate::default()
                },
                20,
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_knowledge_item(Some("b"), &item.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get_knowledge_item(Some("a"), &item.id).await.unwrap(),
        Some(item.clone()),
        "unchanged"
    );
    assert_eq!(
        store.get_knowledge_item(None, &item.id).await.unwrap(),
        Some(item),
        "the operator sees it"
    );
}
