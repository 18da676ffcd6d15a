//! Call recordings: stored per call, tenant-scoped, listed for the retention sweep.

#[macro_use]
mod common;

use common::add_tenants;

use vaani_store::{
    CallDirection, CallFilter, CallStatus, NewCall, Recording, Scope, Store, StoreError, new_id,
};

on_sqlite_and_postgres!(
    a_recording_is_seen_by_its_tenant_and_the_operator_only,
    a_recording_needs_the_tenants_own_call,
    retention_lists_a_tenants_old_recordings_and_deletes_them,
    recordings_are_listed_newest_first_within_the_scope,
);

async fn call(store: &Store, tenant_id: &str) -> String {
    let id = new_id();
    store
        .insert_call(&NewCall {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: "+919800000001".to_owned(),
            dialled: "+918000000099".to_owned(),
            status: CallStatus::Ringing,
            started_at_ms: 10_000,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    id
}

fn recording(tenant_id: &str, call_id: &str, created_at_ms: i64) -> Recording {
    Recording {
        tenant_id: tenant_id.to_owned(),
        call_id: call_id.to_owned(),
        path: format!("/rec/{tenant_id}/{call_id}.wav"),
        duration_ms: 4_200,
        created_at_ms,
    }
}

async fn a_recording_is_seen_by_its_tenant_and_the_operator_only(store: Store) {
    add_tenants(&store).await;
    let id = call(&store, "a").await;
    let unrecorded = call(&store, "a").await;
    store
        .set_recording(&recording("a", &id, 50_000))
        .await
        .unwrap();

    let mine = store
        .recording_for_call(&Scope::Tenant("a".into()), &id)
        .await
        .unwrap();
    assert_eq!(mine, Some(recording("a", &id, 50_000)));
    let operator = store
        .recording_for_call(&Scope::Operator, &id)
        .await
        .unwrap();
    assert_eq!(operator, mine);
    assert_eq!(
        store
            .recording_for_call(&Scope::Tenant("b".into()), &id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .recording_for_call(&Scope::Tenant("a".into()), &unrecorded)
            .await
            .unwrap(),
        None
    );

    // The call detail says whether there is one, without the server path.
    let detail = store
        .get_call(&Scope::Tenant("a".into()), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.recording, mine);
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["recording"]["duration_ms"], 4_200);
    assert!(json["recording"].get("path").is_none());
    let detail = store
        .get_call(&Scope::Tenant("a".into()), &unrecorded)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&detail).unwrap()["recording"],
        serde_json::Value::Null
    );
}

async fn a_recording_needs_the_tenants_own_call(store: Store) {
    add_tenants(&store).await;
    let id = call(&store, "a").await;
    let error = store
        .set_recording(&recording("b", &id, 50_000))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound { what: "call", .. }),
        "{error:?}"
    );
    // Setting it again replaces it.
    store.set_recording(&recording("a", &id, 1)).await.unwrap();
    store.set_recording(&recording("a", &id, 2)).await.unwrap();
    let got = store
        .recording_for_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.created_at_ms, 2);
}

async fn retention_lists_a_tenants_old_recordings_and_deletes_them(store: Store) {
    add_tenants(&store).await;
    let old = call(&store, "a").await;
    let new = call(&store, "a").await;
    let other = call(&store, "b").await;
    store
        .set_recording(&recording("a", &old, 1_000))
        .await
        .unwrap();
    store
        .set_recording(&recording("a", &new, 9_000))
        .await
        .unwrap();
    store
        .set_recording(&recording("b", &other, 1_000))
        .await
        .unwrap();

    let expired = store.recordings_before("a", 5_000, 100).await.unwrap();
    assert_eq!(expired, vec![recording("a", &old, 1_000)]);
    assert!(store.delete_recording("a", &old).await.unwrap());
    assert!(!store.delete_recording("a", &old).await.unwrap());
    // Another tenant's recording is not touched by tenant a's sweep.
    assert!(!store.delete_recording("a", &other).await.unwrap());
    assert!(
        store
            .recordings_before("a", 5_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .recordings_before("b", 5_000, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn recordings_are_listed_newest_first_within_the_scope(store: Store) {
    add_tenants(&store).await;
    let first = call(&store, "a").await;
    let second = call(&store, "a").await;
    let other = call(&store, "b").await;
    store
        .set_recording(&recording("a", &first, 1_000))
        .await
        .unwrap();
    store
        .set_recording(&recording("a", &second, 2_000))
        .await
        .unwrap();
    store
        .set_recording(&recording("b", &other, 3_000))
        .await
        .unwrap();
    let ids = |list: Vec<Recording>| list.into_iter().map(|r| r.call_id).collect::<Vec<_>>();
    let all = CallFilter {
        tenant: None,
        limit: 50,
        ..CallFilter::default()
    };
    assert_eq!(
        ids(store.list_recordings(&Scope::Operator, &all).await.unwrap()),
        vec![other.clone(), second.clone(), first.clone()]
    );
    assert_eq!(
        ids(store
            .list_recordings(&Scope::Tenant("a".into()), &all)
            .await
            .unwrap()),
        vec![second.clone(), first.clone()]
    );
    let only_b = CallFilter {
        tenant: Some("b".into()),
        limit: 1,
        ..CallFilter::default()
    };
    assert!(
        store
            .list_recordings(&Scope::Tenant("a".into()), &only_b)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store
            .list_recordings(&Scope::Operator, &only_b)
            .await
            .unwrap()),
        vec![other]
    );
}
