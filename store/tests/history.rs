//! Call summaries and sentiment, and a caller's recent calls with their extractions.

#[macro_use]
mod common;

use common::add_tenants;

use serde_json::json;
use vaani_store::{
    CallDirection, CallOutcome, CallStatus, MAX_RECENT_CALLS, NewCall, PastCall, Scope, Sentiment,
    Store, StoreError, new_id,
};

on_sqlite_and_postgres!(
    summary_round_trips_and_shows_in_the_call_detail,
    another_tenant_cannot_set_or_read_the_summary,
    unknown_call_is_not_found,
    recent_calls_are_the_callers_own_newest_first_with_extractions,
    recent_calls_returns_at_most_twenty,
);

const ASHA: &str = "+919800000001";
const RAVI: &str = "+919800000002";

/// Inserts a ringing call from `caller` to tenant `tenant_id`; returns its id.
async fn call_from(store: &Store, tenant_id: &str, caller: &str, started_at_ms: i64) -> String {
    let id = new_id();
    store
        .insert_call(&NewCall {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: caller.to_owned(),
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

/// Answers the call at `answered_at_ms` and ends it at `ended_at_ms`.
async fn talk(
    store: &Store,
    tenant_id: &str,
    call_id: &str,
    answered_at_ms: i64,
    ended_at_ms: i64,
) {
    store
        .mark_answered(tenant_id, call_id, answered_at_ms)
        .await
        .unwrap();
    store
        .finish_call(
            tenant_id,
            call_id,
            &CallOutcome {
                status: CallStatus::Completed,
                ended_at_ms,
                end_reason: "caller_hangup".to_owned(),
                media_stats: None,
                error: None,
            },
        )
        .await
        .unwrap();
}

fn ids(calls: &[PastCall]) -> Vec<&str> {
    calls.iter().map(|c| c.call_id.as_str()).collect()
}

fn assert_call_not_found(err: StoreError, call_id: &str) {
    assert!(
        matches!(&err, StoreError::NotFound { what: "call", id } if id == call_id),
        "{err}"
    );
}

async fn summary_round_trips_and_shows_in_the_call_detail(store: Store) {
    add_tenants(&store).await;
    let id = call_from(&store, "a", ASHA, 10_000).await;
    let a = Scope::Tenant("a".into());

    // Unset: no summary, and the detail's new fields are null.
    assert_eq!(store.call_summary(&a, &id).await.unwrap(), None);
    let detail = store.get_call(&a, &id).await.unwrap().unwrap();
    assert_eq!((detail.summary, detail.sentiment), (None, None));
    let json = serde_json::to_value(store.get_call(&a, &id).await.unwrap().unwrap()).unwrap();
    assert_eq!(json["summary"], json!(null));
    assert_eq!(json["sentiment"], json!(null));
    assert!(json.as_object().unwrap().contains_key("summary"));
    assert!(json.as_object().unwrap().contains_key("sentiment"));

    let text = "Booked a table for four at 8 pm; asked for a window seat.";
    store
        .set_call_summary("a", &id, text, Some(Sentiment::Positive))
        .await
        .unwrap();
    assert_eq!(
        store.call_summary(&a, &id).await.unwrap(),
        Some((text.to_owned(), Some(Sentiment::Positive)))
    );
    assert_eq!(
        store.call_summary(&Scope::Operator, &id).await.unwrap(),
        Some((text.to_owned(), Some(Sentiment::Positive)))
    );
    let detail = store.get_call(&a, &id).await.unwrap().unwrap();
    assert_eq!(detail.summary.as_deref(), Some(text));
    assert_eq!(detail.sentiment, Some(Sentiment::Positive));
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["summary"], json!(text));
    assert_eq!(json["sentiment"], json!("positive"));
    // The existing fields are still there, unchanged in shape.
    assert_eq!(json["id"], json!(id));
    assert_eq!(json["caller"], json!(ASHA));
    assert_eq!(json["status"], json!("ringing"));
    for key in ["transcript", "extractions", "events", "turns"] {
        assert!(json[key].is_array(), "{key}");
    }
    for key in ["cost", "latency"] {
        assert_eq!(json[key], json!(null), "{key}");
    }

    // A second summary replaces the first; no sentiment clears it.
    store
        .set_call_summary("a", &id, "Cancelled the booking.", None)
        .await
        .unwrap();
    assert_eq!(
        store.call_summary(&a, &id).await.unwrap(),
        Some(("Cancelled the booking.".to_owned(), None))
    );
    let detail = store
        .get_call(&Scope::Operator, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.as_deref(), Some("Cancelled the booking."));
    assert_eq!(detail.sentiment, None);
}

async fn another_tenant_cannot_set_or_read_the_summary(store: Store) {
    add_tenants(&store).await;
    let id = call_from(&store, "a", ASHA, 10_000).await;
    store
        .set_call_summary(
            "a",
            &id,
            "Asked about opening hours.",
            Some(Sentiment::Neutral),
        )
        .await
        .unwrap();

    let err = store
        .set_call_summary("b", &id, "overwritten", Some(Sentiment::Negative))
        .await
        .unwrap_err();
    assert_call_not_found(err, &id);

    let b = Scope::Tenant("b".into());
    assert_eq!(store.call_summary(&b, &id).await.unwrap(), None);
    assert_eq!(store.get_call(&b, &id).await.unwrap(), None);

    // Tenant a's summary is untouched.
    assert_eq!(
        store
            .call_summary(&Scope::Tenant("a".into()), &id)
            .await
            .unwrap(),
        Some((
            "Asked about opening hours.".to_owned(),
            Some(Sentiment::Neutral)
        ))
    );
}

async fn unknown_call_is_not_found(store: Store) {
    add_tenants(&store).await;
    let err = store
        .set_call_summary("a", "no-such-call", "x", None)
        .await
        .unwrap_err();
    assert_call_not_found(err, "no-such-call");
    assert_eq!(
        store
            .call_summary(&Scope::Operator, "no-such-call")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .call_summary(&Scope::Tenant("a".into()), "no-such-call")
            .await
            .unwrap(),
        None
    );
}

async fn recent_calls_are_the_callers_own_newest_first_with_extractions(store: Store) {
    add_tenants(&store).await;

    // Asha's calls to tenant a: answered at 1 s, unanswered at 2 s, summarised at 3 s,
    // and the call in progress at 5 s.
    let first = call_from(&store, "a", ASHA, 1_000).await;
    talk(&store, "a", &first, 1_500, 63_000).await;
    // Submitted out of alphabetical order, with the same timestamp likely: kept in order.
    for (schema, data) in [
        ("order", json!({"items": ["dosa"], "total": 120})),
        ("delivery", json!({"address": "12 MG Road"})),
        ("allergy", json!({"nuts": true})),
    ] {
        store
            .add_extraction("a", &first, schema, &data)
            .await
            .unwrap();
    }
    let missed = call_from(&store, "a", ASHA, 2_000).await;
    let summarised = call_from(&store, "a", ASHA, 3_000).await;
    talk(&store, "a", &summarised, 3_100, 33_600).await;
    store
        .set_call_summary(
            "a",
            &summarised,
            "Asked where the order was.",
            Some(Sentiment::Negative),
        )
        .await
        .unwrap();
    let current = call_from(&store, "a", ASHA, 5_000).await;
    store
        .add_extraction("a", &current, "order", &json!({"items": ["vada"]}))
        .await
        .unwrap();

    // Noise: another caller to tenant a, and Asha calling tenant b.
    let ravi = call_from(&store, "a", RAVI, 2_500).await;
    store
        .add_extraction("a", &ravi, "order", &json!({"items": ["idli"]}))
        .await
        .unwrap();
    let other_tenant = call_from(&store, "b", ASHA, 4_000).await;
    store
        .set_call_summary("b", &other_tenant, "Tenant b's call.", None)
        .await
        .unwrap();

    let recent = store.recent_calls("a", ASHA, &current, 10).await.unwrap();
    assert_eq!(
        ids(&recent),
        [summarised.as_str(), missed.as_str(), first.as_str()]
    );

    let [newest, unanswered, oldest] = &recent[..] else {
        panic!("three calls expected: {recent:?}");
    };
    assert_eq!(newest.started_at_unix_ms, 3_000);
    assert_eq!(
        newest.duration_secs,
        Some(31),
        "30.5 s of talk rounds to 31"
    );
    assert_eq!(
        newest.summary.as_deref(),
        Some("Asked where the order was.")
    );
    assert!(newest.extractions.is_empty());

    assert_eq!(unanswered.started_at_unix_ms, 2_000);
    assert_eq!(unanswered.duration_secs, None);
    assert_eq!(unanswered.summary, None);
    assert!(unanswered.extractions.is_empty());

    assert_eq!(oldest.started_at_unix_ms, 1_000);
    assert_eq!(
        oldest.duration_secs,
        Some(62),
        "61.5 s of talk rounds to 62"
    );
    assert_eq!(oldest.summary, None);
    let schemas: Vec<&str> = oldest
        .extractions
        .iter()
        .map(|e| e.schema_id.as_str())
        .collect();
    assert_eq!(schemas, ["order", "delivery", "allergy"], "submit order");
    let order: serde_json::Value = serde_json::from_str(&oldest.extractions[0].data_json).unwrap();
    assert_eq!(order, json!({"items": ["dosa"], "total": 120}));

    // The limit keeps the newest.
    let two = store.recent_calls("a", ASHA, &current, 2).await.unwrap();
    assert_eq!(ids(&two), [summarised.as_str(), missed.as_str()]);
    assert!(
        store
            .recent_calls("a", ASHA, &current, 0)
            .await
            .unwrap()
            .is_empty()
    );

    // Excluding another call brings the current one back: only the excluded id is left out.
    let all = store
        .recent_calls("a", ASHA, "no-such-call", 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].call_id, current);
    assert_eq!(all[0].duration_secs, None, "still in progress");
    assert_eq!(all[0].extractions.len(), 1);

    // Tenant b sees only its own call from Asha; Ravi only his.
    let b = store.recent_calls("b", ASHA, "none", 10).await.unwrap();
    assert_eq!(ids(&b), [other_tenant.as_str()]);
    assert_eq!(b[0].summary.as_deref(), Some("Tenant b's call."));
    let ravis = store.recent_calls("a", RAVI, "none", 10).await.unwrap();
    assert_eq!(ids(&ravis), [ravi.as_str()]);
    assert_eq!(ravis[0].extractions[0].schema_id, "order");

    // Nobody else's calls: an unknown number or tenant has no history.
    assert!(
        store
            .recent_calls("a", "+910000000000", "none", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .recent_calls("nobody", ASHA, "none", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn recent_calls_returns_at_most_twenty(store: Store) {
    add_tenants(&store).await;
    let mut calls = Vec::new();
    for i in 0..25 {
        let id = call_from(&store, "a", ASHA, 1_000 * (i + 1)).await;
        store
            .add_extraction("a", &id, "visit", &json!({"n": i}))
            .await
            .unwrap();
        calls.push(id);
    }
    let recent = store.recent_calls("a", ASHA, "none", 100).await.unwrap();
    assert_eq!(recent.len(), MAX_RECENT_CALLS as usize);
    let newest_twenty: Vec<&str> = calls.iter().rev().take(20).map(String::as_str).collect();
    assert_eq!(ids(&recent), newest_twenty);
    // Each call carries its own extraction, not its neighbours'.
    for (call, n) in recent.iter().zip((5..25).rev()) {
        assert_eq!(call.extractions.len(), 1);
        let data: serde_json::Value = serde_json::from_str(&call.extractions[0].data_json).unwrap();
        assert_eq!(data, json!({"n": n}));
    }
}
