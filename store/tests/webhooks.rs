//! Webhooks: endpoints per tenant, call events written to the outbox with the call change they
//! report, and the dispatcher's lease / deliver / retry / give-up cycle.

#[macro_use]
mod common;

use common::add_tenants;

use vaani_store::{
    CallDirection, CallOutcome, CallReport, CallStatus, DeliveryStatus, NewCall, Scope, Sentiment,
    Store, StoreError, WebhookDelivery, WebhookEventType, new_id,
};

use WebhookEventType::{CallAnalyzed, CallEnded, CallStarted};

fn tenant(id: &str) -> Scope {
    Scope::Tenant(id.to_owned())
}

on_sqlite_and_postgres!(
    endpoints_belong_to_their_tenant,
    call_changes_write_events_for_subscribed_endpoints_only,
    a_crashed_call_ends_with_an_event,
    a_call_without_a_summary_can_be_marked_analyzed,
    deliveries_are_leased_retried_and_given_up,
    deleting_an_endpoint_drops_its_deliveries,
    a_restarted_node_releases_only_its_own_leases,
    endpoints_are_served_side_by_side,
    ended_deliveries_are_pruned_pending_ones_kept,
);

async fn call(store: &Store, tenant_id: &str, started_at_ms: i64) -> String {
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
            started_at_ms,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    id
}

fn outcome(ended_at_ms: i64) -> CallOutcome {
    CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms,
        end_reason: "caller_hangup".to_owned(),
        media_stats: None,
        error: None,
    }
}

fn report() -> CallReport {
    CallReport {
        turns: Vec::new(),
        cost_inr_micros: 1_500_000,
        cost: serde_json::json!({"total_inr": 1.5}),
        latency: serde_json::json!({"count": 0}),
    }
}

async fn deliveries(store: &Store, tenant_id: &str) -> Vec<WebhookDelivery> {
    let mut all = store
        .list_webhook_deliveries(Some(tenant_id), None, 500)
        .await
        .unwrap();
    all.reverse(); // oldest first
    all
}

fn types(deliveries: &[WebhookDelivery]) -> Vec<WebhookEventType> {
    deliveries.iter().map(|d| d.event_type).collect()
}

async fn endpoints_belong_to_their_tenant(store: Store) {
    add_tenants(&store).await;
    let all = store
        .create_webhook_endpoint("a", "https://a.example/hook", &[], "secret-a", 10)
        .await
        .unwrap();
    assert_eq!(all.events, WebhookEventType::ALL, "no list: every event");
    let ended = store
        .create_webhook_endpoint(
            "a",
            "https://a.example/ended",
            &[CallEnded, CallEnded],
            "secret-a2",
            20,
        )
        .await
        .unwrap();
    assert_eq!(ended.events, [CallEnded], "duplicates are dropped");
    assert_eq!(
        store.list_webhook_endpoints(Some("a")).await.unwrap(),
        [all.clone(), ended.clone()]
    );
    assert!(
        store
            .list_webhook_endpoints(Some("b"))
            .await
            .unwrap()
            .is_empty()
    );

    let foreign = store.delete_webhook_endpoint(&tenant("b"), &all.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound { .. })));
    assert_eq!(
        store.list_webhook_endpoints(Some("a")).await.unwrap().len(),
        2
    );
    store
        .delete_webhook_endpoint(&tenant("a"), &all.id)
        .await
        .unwrap();
    assert_eq!(
        store.list_webhook_endpoints(Some("a")).await.unwrap(),
        [ended]
    );

    let ghost = store
        .create_webhook_endpoint("ghost", "https://x.example/", &[], "s", 30)
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound { .. })));
}

async fn call_changes_write_events_for_subscribed_endpoints_only(store: Store) {
    add_tenants(&store).await;
    let every = store
        .create_webhook_endpoint("a", "https://a.example/all", &[], "s1", 1)
        .await
        .unwrap();
    let ended_only = store
        .create_webhook_endpoint("a", "https://a.example/ended", &[CallEnded], "s2", 2)
        .await
        .unwrap();

    // A call of tenant b writes nothing for a's endpoints.
    let other = call(&store, "b", 5_000).await;
    store
        .finish_call("b", &other, &outcome(6_000))
        .await
        .unwrap();
    assert!(deliveries(&store, "a").await.is_empty());
    assert!(
        deliveries(&store, "b").await.is_empty(),
        "b has no endpoints"
    );

    let id = call(&store, "a", 10_000).await;
    store.mark_answered("a", &id, 11_000).await.unwrap();
    store
        .add_extraction("a", &id, "booking", &serde_json::json!({"slot": "10:00"}))
        .await
        .unwrap();
    store
        .finish_call_with_report("a", &id, &outcome(71_000), &report())
        .await
        .unwrap();
    store
        .set_call_summary("a", &id, "Booked at ten.", Some(Sentiment::Positive))
        .await
        .unwrap();

    let all = deliveries(&store, "a").await;
    let to_every: Vec<&WebhookDelivery> =
        all.iter().filter(|d| d.endpoint_id == every.id).collect();
    let to_ended: Vec<&WebhookDelivery> = all
        .iter()
        .filter(|d| d.endpoint_id == ended_only.id)
        .collect();
    assert_eq!(
        to_every.iter().map(|d| d.event_type).collect::<Vec<_>>(),
        [CallStarted, CallEnded, CallAnalyzed]
    );
    assert_eq!(
        to_ended.iter().map(|d| d.event_type).collect::<Vec<_>>(),
        [CallEnded]
    );
    for delivery in &all {
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 0);
        assert_eq!(
            delivery.id,
            format!("{}:{}", delivery.event_id, delivery.endpoint_id)
        );
        assert_eq!(delivery.payload["tenant_id"], "a");
        assert_eq!(delivery.payload["id"], delivery.event_id.as_str());
        assert_eq!(delivery.payload["type"], delivery.event_type.as_str());
        assert_eq!(delivery.payload["data"]["call_id"], id.as_str());
    }
    // Both endpoints get the same call.ended event.
    assert_eq!(to_every[1].event_id, to_ended[0].event_id);

    let started = &to_every[0].payload["data"];
    assert_eq!(started["caller"], "+919800000001");
    assert_eq!(started["direction"], "inbound");
    assert_eq!(started["started_at_ms"], 10_000);
    let ended = &to_every[1].payload["data"];
    assert_eq!(ended["status"], "completed");
    assert_eq!(ended["end_reason"], "caller_hangup");
    assert_eq!(ended["answered_at_ms"], 11_000);
    assert_eq!(ended["ended_at_ms"], 71_000);
    assert_eq!(ended["duration_ms"], 60_000);
    assert_eq!(ended["cost_inr"], 1.5);
    let analyzed = &to_every[2].payload["data"];
    assert_eq!(analyzed["summary"], "Booked at ten.");
    assert_eq!(analyzed["sentiment"], "positive");
    assert_eq!(analyzed["extractions"][0]["schema_id"], "booking");
    assert_eq!(analyzed["extractions"][0]["data"]["slot"], "10:00");

    // A failed write writes no event: finishing another tenant's call.
    let refused = store.finish_call("b", &id, &outcome(80_000)).await;
    assert!(matches!(refused, Err(StoreError::NotFound { .. })));
    assert_eq!(deliveries(&store, "a").await.len(), all.len());
}

async fn a_crashed_call_ends_with_an_event(store: Store) {
    add_tenants(&store).await;
    store
        .create_webhook_endpoint("a", "https://a.example/", &[CallEnded], "s", 1)
        .await
        .unwrap();
    let open = call(&store, "a", 10_000).await;
    let done = call(&store, "a", 10_000).await;
    store
        .finish_call("a", &done, &outcome(20_000))
        .await
        .unwrap();
    assert_eq!(store.mark_unfinished_calls_failed(30_000).await.unwrap(), 1);
    let ended = deliveries(&store, "a").await;
    assert_eq!(types(&ended), [CallEnded, CallEnded]);
    let crashed = &ended[1].payload["data"];
    assert_eq!(crashed["call_id"], open.as_str());
    assert_eq!(crashed["status"], "failed");
    assert_eq!(crashed["end_reason"], "server_restart");
    assert_eq!(crashed["duration_ms"], 0, "never answered");
}

async fn a_call_without_a_summary_can_be_marked_analyzed(store: Store) {
    add_tenants(&store).await;
    store
        .create_webhook_endpoint("a", "https://a.example/", &[CallAnalyzed], "s", 1)
        .await
        .unwrap();
    let id = call(&store, "a", 10_000).await;
    store
        .add_extraction("a", &id, "lead", &serde_json::json!({"name": "Asha"}))
        .await
        .unwrap();
    store.mark_call_analyzed("a", &id, 20_000).await.unwrap();
    let analyzed = deliveries(&store, "a").await;
    assert_eq!(types(&analyzed), [CallAnalyzed]);
    let data = &analyzed[0].payload["data"];
    assert_eq!(data["summary"], serde_json::Value::Null);
    assert_eq!(data["extractions"][0]["data"]["name"], "Asha");

    let foreign = store.mark_call_analyzed("b", &id, 20_000).await;
    assert!(matches!(foreign, Err(StoreError::NotFound { .. })));
}

async fn deliveries_are_leased_retried_and_given_up(store: Store) {
    add_tenants(&store).await;
    let endpoint = store
        .create_webhook_endpoint("a", "https://a.example/hook", &[CallStarted], "key", 1)
        .await
        .unwrap();
    call(&store, "a", 10_000).await;
    call(&store, "a", 10_001).await;
    let claim = |at: i64, lease: i64| {
        let store = store.clone();
        async move { store.claim_webhook_deliveries(at, lease, 10).await.unwrap() }
    };

    // Not due before the event happened.
    assert!(claim(9_999, 30_000).await.is_empty());
    // One at a time per endpoint, the oldest first, even with room for more.
    let leased = claim(20_000, 30_000).await;
    assert_eq!(leased.len(), 1);
    let first = &leased[0];
    assert_eq!(first.url, "https://a.example/hook");
    assert_eq!(first.secret, "key");
    assert_eq!(first.attempts, 1);
    assert_eq!(first.event_type, "call.started");
    assert_eq!(first.created_at_ms, 10_000);
    let body: serde_json::Value = serde_json::from_str(&first.payload).unwrap();
    assert_eq!(body["type"], "call.started");
    assert!(
        claim(20_000, 30_000).await.is_empty(),
        "the endpoint is busy"
    );

    // A failure with a retry time: the endpoint's queue waits for it (events stay in order).
    assert!(
        store
            .record_webhook_failure(first, Some(503), "HTTP 503", Some(60_000))
            .await
            .unwrap()
    );
    assert!(claim(59_999, 30_000).await.is_empty());
    let retry = claim(60_000, 30_000).await;
    assert_eq!(
        (retry[0].id.as_str(), retry[0].attempts),
        (first.id.as_str(), 2)
    );
    assert!(
        store
            .record_webhook_delivered(&retry[0], 204, 60_500)
            .await
            .unwrap()
    );

    // The second: its lease runs out and another dispatcher takes it; the first one's late
    // outcome is not recorded over the second's.
    let slow = claim(61_000, 100).await;
    assert_eq!(slow.len(), 1);
    assert_ne!(slow[0].id, first.id);
    let taken_over = claim(61_200, 30_000).await;
    assert_eq!(
        (taken_over[0].id.as_str(), taken_over[0].attempts),
        (slow[0].id.as_str(), 2)
    );
    assert!(
        !store
            .record_webhook_failure(&slow[0], None, "timed out", Some(90_000))
            .await
            .unwrap(),
        "a lost lease records nothing"
    );
    // Given up for good.
    assert!(
        store
            .record_webhook_failure(&taken_over[0], None, "connection refused", None)
            .await
            .unwrap()
    );
    assert!(
        claim(i64::MAX / 2, 30_000).await.is_empty(),
        "a failed delivery is not retried"
    );

    let log = store
        .list_webhook_deliveries(Some("a"), None, 50)
        .await
        .unwrap();
    let by_id = |id: &str| log.iter().find(|d| d.id == id).unwrap().clone();
    let delivered = by_id(&first.id);
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.delivered_at_ms, Some(60_500));
    assert_eq!(delivered.last_status, Some(204));
    assert_eq!(delivered.attempts, 2);
    let failed = by_id(&slow[0].id);
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.last_status, None);
    assert_eq!(failed.last_error.as_deref(), Some("connection refused"));
    assert_eq!(failed.endpoint_id, endpoint.id);
    let only_failed = store
        .list_webhook_deliveries(Some("a"), Some(DeliveryStatus::Failed), 50)
        .await
        .unwrap();
    assert_eq!(only_failed.len(), 1);
    assert!(
        store
            .list_webhook_deliveries(Some("b"), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn endpoints_are_served_side_by_side(store: Store) {
    add_tenants(&store).await;
    for (tenant, url) in [("a", "https://a.example/"), ("b", "https://b.example/")] {
        store
            .create_webhook_endpoint(tenant, url, &[CallStarted], "s", 1)
            .await
            .unwrap();
    }
    for at in [10_000, 10_001, 10_002] {
        call(&store, "a", at).await;
    }
    call(&store, "b", 10_003).await;
    // A's backlog does not keep B waiting: one of each.
    let leased = store
        .claim_webhook_deliveries(20_000, 30_000, 10)
        .await
        .unwrap();
    let tenants: Vec<&str> = leased.iter().map(|d| d.tenant_id.as_str()).collect();
    assert_eq!(tenants, ["a", "b"]);
}

async fn deleting_an_endpoint_drops_its_deliveries(store: Store) {
    add_tenants(&store).await;
    let endpoint = store
        .create_webhook_endpoint("a", "https://a.example/", &[], "s", 1)
        .await
        .unwrap();
    call(&store, "a", 10_000).await;
    assert_eq!(deliveries(&store, "a").await.len(), 1);
    store
        .delete_webhook_endpoint(&Scope::Operator, &endpoint.id)
        .await
        .unwrap();
    assert!(deliveries(&store, "a").await.is_empty());
    assert!(
        store
            .claim_webhook_deliveries(20_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_restarted_node_releases_only_its_own_leases(store: Store) {
    add_tenants(&store).await;
    for (tenant, url) in [("a", "https://a.example/"), ("b", "https://b.example/")] {
        store
            .create_webhook_endpoint(tenant, url, &[CallStarted], "s", 1)
            .await
            .unwrap();
    }
    call(&store, "a", 10_000).await;
    call(&store, "b", 10_001).await;
    let node_a = store.clone().with_node_id("node-a");
    let node_b = store.clone().with_node_id("node-b");
    let of_a = node_a
        .claim_webhook_deliveries(20_000, 60_000, 1)
        .await
        .unwrap();
    let of_b = node_b
        .claim_webhook_deliveries(20_000, 60_000, 1)
        .await
        .unwrap();
    assert_eq!((of_a.len(), of_b.len()), (1, 1));
    // Node a "crashes" and starts again: its lease is released, node b's is kept.
    assert_eq!(node_a.release_webhook_leases().await.unwrap(), 1);
    let again = node_a
        .claim_webhook_deliveries(20_001, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "only a's delivery is due again");
    assert_eq!(
        (again[0].id.as_str(), again[0].attempts),
        (of_a[0].id.as_str(), 2)
    );
    assert_eq!(node_b.release_webhook_leases().await.unwrap(), 1);
}

async fn ended_deliveries_are_pruned_pending_ones_kept(store: Store) {
    add_tenants(&store).await;
    for (tenant, url) in [("a", "https://a.example/"), ("b", "https://b.example/")] {
        store
            .create_webhook_endpoint(tenant, url, &[CallStarted], "s", 1)
            .await
            .unwrap();
    }
    call(&store, "a", 10_000).await;
    call(&store, "b", 10_001).await;
    call(&store, "a", 50_000).await;
    let leased = store
        .claim_webhook_deliveries(20_000, 30_000, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    let of_a = leased.iter().find(|d| d.tenant_id == "a").unwrap();
    let of_b = leased.iter().find(|d| d.tenant_id == "b").unwrap();
    store
        .record_webhook_delivered(of_a, 200, 20_100)
        .await
        .unwrap();
    store
        .record_webhook_failure(of_b, None, "gone", None)
        .await
        .unwrap();
    // Ended before 40 s: a's first (delivered) and b's (failed). a's second is pending.
    assert_eq!(store.prune_webhook_deliveries(40_000).await.unwrap(), 2);
    let left: Vec<i64> = store
        .list_webhook_deliveries(None, None, 50)
        .await
        .unwrap()
        .iter()
        .map(|d| d.created_at_ms)
        .collect();
    assert_eq!(left, [50_000]);
    assert_eq!(
        store.prune_webhook_deliveries(i64::MAX).await.unwrap(),
        0,
        "a pending delivery is never pruned"
    );
}
