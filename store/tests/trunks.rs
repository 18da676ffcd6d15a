//! Trunks: the config file's, mirrored at start, and the operator's API trunks, which can
//! never replace a config trunk.

#[macro_use]
mod common;

use vaani_store::{Store, StoreError, Trunk, TrunkSource};

on_sqlite_and_postgres!(
    api_trunks_are_created_replaced_listed_and_deleted,
    a_config_trunk_cannot_be_changed_or_deleted_over_the_api,
);

fn trunk(id: &str, cidrs: &[&str]) -> Trunk {
    Trunk {
        id: id.to_owned(),
        name: format!("Trunk {id}"),
        allowed_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
    }
}

async fn api_trunks_are_created_replaced_listed_and_deleted(store: Store) {
    store
        .upsert_trunk(&trunk("local", &["127.0.0.1/32"]))
        .await
        .unwrap();
    assert!(
        store
            .put_api_trunk(&trunk("partner", &["10.0.0.0/8"]))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_api_trunk(&trunk("partner", &["10.1.0.0/16"]))
            .await
            .unwrap(),
        "the second put replaces"
    );
    let listed = store.list_trunks().await.unwrap();
    let summary: Vec<(&str, TrunkSource, &[String])> = listed
        .iter()
        .map(|l| {
            (
                l.trunk.id.as_str(),
                l.source,
                l.trunk.allowed_cidrs.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "local",
                TrunkSource::Config,
                &["127.0.0.1/32".to_owned()][..]
            ),
            ("partner", TrunkSource::Api, &["10.1.0.0/16".to_owned()][..]),
        ]
    );
    store.delete_api_trunk("partner").await.unwrap();
    assert!(matches!(
        store.delete_api_trunk("partner").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.list_trunks().await.unwrap().len(), 1);
}

async fn a_config_trunk_cannot_be_changed_or_deleted_over_the_api(store: Store) {
    store
        .upsert_trunk(&trunk("local", &["127.0.0.1/32"]))
        .await
        .unwrap();
    assert!(matches!(
        store.put_api_trunk(&trunk("local", &["0.0.0.0/0"])).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.delete_api_trunk("local").await,
        Err(StoreError::Conflict { .. })
    ));
    let local = store.get_trunk("local").await.unwrap().unwrap();
    assert_eq!(local.allowed_cidrs, ["127.0.0.1/32"], "unchanged");
    // A config trunk that arrives later takes over an API trunk of the same id.
    store
        .put_api_trunk(&trunk("later", &["10.0.0.0/8"]))
        .await
        .unwrap();
    store
        .upsert_trunk(&trunk("later", &["192.0.2.0/24"]))
        .await
        .unwrap();
    let later = store
        .list_trunks()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.trunk.id == "later")
        .unwrap();
    assert_eq!(later.source, TrunkSource::Config);
}
