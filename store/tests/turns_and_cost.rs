//! Per-turn latency rows, the cost ledger and the latency summary written when a call ends.

#[macro_use]
mod common;

use common::add_tenants;

use serde_json::json;
use vaani_store::{
    CallDirection, CallOutcome, CallReport, CallStatus, CallTurn, NewCall, Scope, Store,
    StoreError, Tenant, TenantStatus, new_id,
};

on_sqlite_and_postgres!(
    report_round_trips_with_the_call,
    turns_are_tenant_scoped,
    another_tenants_report_is_refused_and_writes_nothing,
    a_failed_turn_insert_rolls_the_whole_report_back,
);

async fn answered_call(store: &Store, tenant_id: &str, started_at_ms: i64) -> String {
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
    store
        .mark_answered(tenant_id, &id, started_at_ms + 100)
        .await
        .unwrap();
    id
}

fn outcome() -> CallOutcome {
    CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms: 90_000,
        end_reason: "caller_hangup".to_owned(),
        media_stats: None,
        error: None,
    }
}

fn turns() -> Vec<CallTurn> {
    vec![
        CallTurn {
            index: 0,
            speech_end_ms: 4_200,
            caller_text: Some("I would like an appointment".to_owned()),
            transcript_ms: Some(410),
            plugin_ms: Some(1),
            llm_first_token_ms: None,
            tts_first_audio_ms: Some(95),
            first_rtp_ms: Some(18),
            total_ms: Some(524),
            server_added_ms: Some(40),
            stt_processing_ms: Some(390),
            tts_synthesis_ms: Some(94),
            superseded: false,
        },
        // A turn the caller talked over: only the transcript mark.
        CallTurn {
            index: 1,
            speech_end_ms: 9_000,
            caller_text: Some("wait".to_owned()),
            transcript_ms: Some(300),
            superseded: true,
            ..CallTurn::default()
        },
    ]
}

fn report() -> CallReport {
    CallReport {
        turns: turns(),
        cost_inr_micros: 1_234_567,
        cost: json!({"total_inr": 1.234567, "unpriced": []}),
        latency: json!({"turns": 2, "p50_ms": 524}),
    }
}

async fn report_round_trips_with_the_call(store: Store) {
    add_tenants(&store).await;
    let id = answered_call(&store, "a", 10_000).await;

    // Before the end: no figures yet.
    let open = store
        .get_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(open.turns.is_empty());
    assert_eq!(open.cost, None);
    assert_eq!(open.latency, None);
    assert_eq!(open.call.cost_inr_micros, None);

    store
        .finish_call_with_report("a", &id, &outcome(), &report())
        .await
        .unwrap();
    let done = store
        .get_call(&Scope::Tenant("a".into()), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.call.status, CallStatus::Completed);
    assert_eq!(done.call.end_reason.as_deref(), Some("caller_hangup"));
    assert_eq!(done.call.cost_inr_micros, Some(1_234_567));
    assert_eq!(done.turns, turns());
    assert_eq!(done.cost, Some(report().cost));
    assert_eq!(done.latency, Some(report().latency));
    assert_eq!(store.turns_for_call("a", &id).await.unwrap(), turns());

    // The list carries the total; the JSON documents stay in the detail.
    let listed = store
        .list_calls(&Scope::Operator, &Default::default())
        .await
        .unwrap();
    assert_eq!(listed[0].cost_inr_micros, Some(1_234_567));

    // The detail serialises with the new fields beside the old ones.
    let value = serde_json::to_value(&done).unwrap();
    assert_eq!(value["turns"][0]["total_ms"], 524);
    assert_eq!(value["turns"][1]["first_rtp_ms"], serde_json::Value::Null);
    assert_eq!(value["turns"][1]["superseded"], true);
    assert_eq!(value["cost"]["total_inr"], 1.234567);
    assert_eq!(value["cost_inr_micros"], 1_234_567);
}

async fn turns_are_tenant_scoped(store: Store) {
    add_tenants(&store).await;
    let id = answered_call(&store, "a", 10_000).await;
    store
        .finish_call_with_report("a", &id, &outcome(), &report())
        .await
        .unwrap();
    assert!(store.turns_for_call("b", &id).await.unwrap().is_empty());
    assert!(
        store
            .get_call(&Scope::Tenant("b".into()), &id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn another_tenants_report_is_refused_and_writes_nothing(store: Store) {
    add_tenants(&store).await;
    let id = answered_call(&store, "a", 10_000).await;
    let error = store
        .finish_call_with_report("b", &id, &outcome(), &report())
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound { what: "call", .. }),
        "{error}"
    );
    let call = store
        .get_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.call.status, CallStatus::InProgress);
    assert!(call.turns.is_empty());
    assert_eq!(call.cost, None);
}

async fn a_failed_turn_insert_rolls_the_whole_report_back(store: Store) {
    add_tenants(&store).await;
    let id = answered_call(&store, "a", 10_000).await;
    let mut duplicate = report();
    duplicate.turns[1].index = 0;
    let error = store
        .finish_call_with_report("a", &id, &outcome(), &duplicate)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Query { .. }), "{error}");
    let call = store
        .get_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        call.call.status,
        CallStatus::InProgress,
        "status rolled back"
    );
    assert_eq!(call.call.cost_inr_micros, None);
    assert!(call.turns.is_empty());

    // The same call can still be finished afterwards.
    store
        .finish_call_with_report("a", &id, &outcome(), &report())
        .await
        .unwrap();
    assert_eq!(store.turns_for_call("a", &id).await.unwrap().len(), 2);
}

/// Writes a report through one store on `url`, closes it, and reads it back through another.
async fn report_survives_reopening(url: &str) {
    let store = Store::connect(url).await.unwrap();
    store
        .upsert_tenant(&Tenant {
            id: "a".to_owned(),
            name: "A".to_owned(),
            status: TenantStatus::Active,
            created_at_ms: 1,
        })
        .await
        .unwrap();
    let id = answered_call(&store, "a", 10_000).await;
    store
        .finish_call_with_report("a", &id, &outcome(), &report())
        .await
        .unwrap();
    store.close().await;
    let reopened = Store::connect(url).await.unwrap();
    let call = reopened
        .get_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.turns, turns());
    assert_eq!(call.call.cost_inr_micros, Some(1_234_567));
    reopened.close().await;
}

#[tokio::test]
async fn report_survives_reopening_a_file_database() {
    let dir = std::env::temp_dir().join(format!("vaani-store-report-{}", new_id()));
    report_survives_reopening(&format!("sqlite://{}", dir.join("vaani.db").display())).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn report_survives_reconnecting_to_postgres() {
    let db = common::TestDatabase::create().await;
    report_survives_reopening(db.url()).await;
}
