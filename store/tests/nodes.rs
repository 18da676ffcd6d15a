//! Several nodes sharing one database: each call is stamped with the node that runs it, and a
//! node's crash recovery fails only its own unfinished calls.

#[macro_use]
mod common;

use vaani_store::{
    CallDirection, CallStatus, NewCall, SERVER_RESTART_END_REASON, Scope, Store, Tenant,
    TenantStatus, new_id,
};

on_sqlite_and_postgres!(
    recovery_fails_only_this_nodes_unfinished_calls,
    calls_stored_without_a_node_are_recovered_by_any_node,
);

async fn add_tenant(store: &Store) {
    store
        .upsert_tenant(&Tenant {
            id: "a".to_owned(),
            name: "Tenant a".to_owned(),
            status: TenantStatus::Active,
            created_at_ms: 1_000,
        })
        .await
        .unwrap();
}

/// Inserts a `ringing` call through `store` (so stamped with its node) and returns its id.
async fn ringing_call(store: &Store, started_at_ms: i64) -> String {
    let id = new_id();
    store
        .insert_call(&NewCall {
            id: id.clone(),
            tenant_id: "a".to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: "+919800000001".to_owned(),
            dialled: "+918000000001".to_owned(),
            status: CallStatus::Ringing,
            started_at_ms,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    id
}

async fn status_and_reason(store: &Store, id: &str) -> (CallStatus, Option<String>) {
    let call = store
        .get_call(&Scope::Operator, id)
        .await
        .unwrap()
        .expect("call stored")
        .call;
    (call.status, call.end_reason)
}

async fn recovery_fails_only_this_nodes_unfinished_calls(store: Store) {
    add_tenant(&store).await;
    let node_a = store.clone().with_node_id("node-a");
    let node_b = store.clone().with_node_id("node-b");
    assert_eq!(node_a.node_id(), Some("node-a"));
    assert_eq!(store.node_id(), None, "the original handle is unchanged");

    let a_ringing = ringing_call(&node_a, 1).await;
    let a_answered = ringing_call(&node_a, 2).await;
    node_a.mark_answered("a", &a_answered, 10).await.unwrap();
    let b_ringing = ringing_call(&node_b, 3).await;
    let b_answered = ringing_call(&node_b, 4).await;
    node_b.mark_answered("a", &b_answered, 10).await.unwrap();

    // Node A restarts after a crash: only its two calls fail.
    assert_eq!(
        node_a.mark_unfinished_calls_failed(99_000).await.unwrap(),
        2
    );
    for id in [&a_ringing, &a_answered] {
        assert_eq!(
            status_and_reason(&store, id).await,
            (
                CallStatus::Failed,
                Some(SERVER_RESTART_END_REASON.to_owned())
            )
        );
    }
    assert_eq!(
        status_and_reason(&store, &b_ringing).await,
        (CallStatus::Ringing, None),
        "node B's ringing call is live and must stay so"
    );
    assert_eq!(
        status_and_reason(&store, &b_answered).await,
        (CallStatus::InProgress, None),
        "node B's answered call is live and must stay so"
    );

    // Node B's own recovery then fails its calls (and finds nothing of A's left).
    assert_eq!(
        node_b.mark_unfinished_calls_failed(99_500).await.unwrap(),
        2
    );
    assert_eq!(
        status_and_reason(&store, &b_answered).await.0,
        CallStatus::Failed
    );
    assert_eq!(
        node_a.mark_unfinished_calls_failed(100_000).await.unwrap(),
        0
    );
}

async fn calls_stored_without_a_node_are_recovered_by_any_node(store: Store) {
    add_tenant(&store).await;
    // A call stored by a handle without a node (as every call before migration 0009 was).
    let legacy = ringing_call(&store, 1).await;
    let other = ringing_call(&store.clone().with_node_id("node-b"), 2).await;

    let node_a = store.clone().with_node_id("node-a");
    assert_eq!(
        node_a.mark_unfinished_calls_failed(50_000).await.unwrap(),
        1
    );
    assert_eq!(
        status_and_reason(&store, &legacy).await.0,
        CallStatus::Failed
    );
    assert_eq!(
        status_and_reason(&store, &other).await.0,
        CallStatus::Ringing
    );
}
