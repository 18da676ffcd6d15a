//! The read side beyond calls: callers (list, erasure on request), extractions across calls
//! and analytics over a period, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::add_tenants;

use serde_json::json;
use vaani_store::{
    AnalyticsFilter, CallDirection, CallOutcome, CallReport, CallStatus, CallTurn, CallerFilter,
    Cursor, ExtractionFilter, NewCall, NewTranscriptLine, Recording, Scope, Speaker, Store, new_id,
};

on_sqlite_and_postgres!(
    callers_page_most_recent_first_within_a_tenant,
    erasing_a_caller_keeps_only_what_billing_needs,
    extractions_filter_by_schema_and_time_and_page,
    analytics_add_up_the_period,
    analytics_of_nothing_are_zeros,
);

/// Inserts a ringing call and returns its id.
async fn add_call(store: &Store, tenant_id: &str, started_at_ms: i64, caller: &str) -> String {
    let id = new_id();
    store
        .insert_call(&NewCall {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: caller.to_owned(),
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

/// Answers the call 1 s after `started_at_ms` and ends it `talk_ms` later with `status` and a
/// cost of `cost_micros`.
async fn end_call(
    store: &Store,
    tenant_id: &str,
    call_id: &str,
    started_at_ms: i64,
    talk_ms: i64,
    status: CallStatus,
    cost_micros: i64,
) {
    let answered = started_at_ms + 1_000;
    store
        .mark_answered(tenant_id, call_id, answered)
        .await
        .unwrap();
    let outcome = CallOutcome {
        status,
        ended_at_ms: answered + talk_ms,
        end_reason: "caller_hangup".to_owned(),
        media_stats: None,
        error: None,
    };
    let report = CallReport {
        turns: vec![CallTurn {
            caller_text: Some("My name is Asha, my PIN is 1234".to_owned()),
            total_ms: Some(500),
            ..Default::default()
        }],
        cost_inr_micros: cost_micros,
        cost: json!({ "total_inr": cost_micros as f64 / 1e6 }),
        latency: json!({ "count": 1 }),
    };
    store
        .finish_call_with_report(tenant_id, call_id, &outcome, &report)
        .await
        .unwrap();
}

async fn callers_page_most_recent_first_within_a_tenant(store: Store) {
    add_tenants(&store).await;
    // Five callers of a, two of them last called at the same time; one caller of b.
    for (phone, at) in [
        ("+919800000001", 5_000),
        ("+919800000002", 3_000),
        ("+919800000003", 5_000),
        ("+919800000004", 1_000),
        ("+919800000005", 4_000),
    ] {
        store
            .record_caller_call("a", phone, at, None, None)
            .await
            .unwrap();
    }
    store
        .record_caller_call("b", "+919800000009", 9_000, Some("Other"), None)
        .await
        .unwrap();
    let mut walked = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list_callers("a", &CallerFilter { limit: 2, cursor })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        walked.extend(page.items.into_iter().map(|caller| {
            assert_eq!(caller.tenant_id, "a");
            caller.phone
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        walked,
        [
            "+919800000003",
            "+919800000001",
            "+919800000005",
            "+919800000002",
            "+919800000004"
        ]
    );
    let b = store
        .list_callers(
            "b",
            &CallerFilter {
                limit: 50,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(b.items.len(), 1);
    assert_eq!(b.items[0].name.as_deref(), Some("Other"));
    assert_eq!(b.next_cursor, None);
}

async fn erasing_a_caller_keeps_only_what_billing_needs(store: Store) {
    add_tenants(&store).await;
    let asha = "+919800000001";
    let other = "+919800000002";
    let erased_call = add_call(&store, "a", 1_000, asha).await;
    let kept_call = add_call(&store, "a", 2_000, other).await;
    // The same number calling tenant b is b's business.
    let b_call = add_call(&store, "b", 3_000, asha).await;
    for (tenant, call) in [("a", &erased_call), ("a", &kept_call), ("b", &b_call)] {
        let line = NewTranscriptLine {
            speaker: Speaker::Caller,
            text: "I am Asha".to_owned(),
            start_ms: 0,
            end_ms: 1_000,
            confidence: Some(0.9),
        };
        store
            .add_transcript_line(tenant, call, &line)
            .await
            .unwrap();
        let reply = NewTranscriptLine {
            speaker: Speaker::Agent,
            text: "Hello Asha".to_owned(),
            confidence: None,
            ..line
        };
        store
            .add_transcript_line(tenant, call, &reply)
            .await
            .unwrap();
        store
            .add_extraction(tenant, call, "contact", &json!({ "name": "Asha" }))
            .await
            .unwrap();
        store
            .add_call_event(tenant, call, 1_500, "dtmf", "1")
            .await
            .unwrap();
        store.append_dtmf(tenant, call, '1').await.unwrap();
        end_call(
            &store,
            tenant,
            call,
            1_000,
            60_000,
            CallStatus::Completed,
            2_500_000,
        )
        .await;
        store
            .set_call_summary(tenant, call, "Asha booked a visit.", None)
            .await
            .unwrap();
        store
            .set_recording(&Recording {
                tenant_id: tenant.to_owned(),
                call_id: call.clone(),
                path: format!("/recordings/{call}.wav"),
                duration_ms: 60_000,
                created_at_ms: 70_000,
            })
            .await
            .unwrap();
    }
    store
        .record_caller_call("a", asha, 1_000, Some("Asha"), Some(r#"{"likes":"dosa"}"#))
        .await
        .unwrap();
    store
        .record_caller_call("b", asha, 3_000, Some("Asha"), None)
        .await
        .unwrap();

    let erased = store.erase_caller("a", asha).await.unwrap();
    assert!(erased.profile_deleted);
    assert_eq!(erased.calls_redacted, 1);
    assert_eq!(
        erased.recording_paths,
        [format!("/recordings/{erased_call}.wav")]
    );
    assert_eq!(store.get_caller("a", asha).await.unwrap(), None);

    let a = Scope::Tenant("a".into());
    let call = store.get_call(&a, &erased_call).await.unwrap().unwrap();
    assert_eq!(call.call.caller, vaani_store::REDACTED_CALLER);
    assert!(call.transcript.is_empty(), "{:?}", call.transcript);
    assert!(call.extractions.is_empty());
    assert!(call.events.is_empty());
    assert_eq!(call.call.dtmf, "");
    assert_eq!(call.summary, None);
    assert_eq!(call.recording, None);
    assert_eq!(call.turns.len(), 1, "the turn's figures stay");
    assert_eq!(call.turns[0].caller_text, None);
    assert_eq!(call.turns[0].total_ms, Some(500));
    // What billing and analytics need stays.
    assert_eq!(call.call.status, CallStatus::Completed);
    assert_eq!(call.call.cost_inr_micros, Some(2_500_000));
    assert_eq!(call.call.started_at_ms, 1_000);
    // Nothing about the number is left to find in the tenant's calls.
    let by_number = vaani_store::CallFilter {
        caller: Some(asha.to_owned()),
        ..Default::default()
    };
    assert!(store.list_calls(&a, &by_number).await.unwrap().is_empty());

    // Another caller of a, and the same number at tenant b, are untouched.
    for (scope, id) in [
        (a.clone(), &kept_call),
        (Scope::Tenant("b".into()), &b_call),
    ] {
        let call = store.get_call(&scope, id).await.unwrap().unwrap();
        assert_eq!(call.transcript.len(), 2);
        assert_eq!(call.extractions.len(), 1);
        assert_eq!(call.events.len(), 1);
        assert!(call.recording.is_some());
        assert!(call.summary.is_some());
        assert!(call.turns[0].caller_text.is_some());
    }
    assert!(store.get_caller("b", asha).await.unwrap().is_some());

    // Asking again finds nothing; so does the redaction marker itself.
    assert!(store.erase_caller("a", asha).await.unwrap().is_empty());
    assert!(
        store
            .erase_caller("a", vaani_store::REDACTED_CALLER)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn extractions_filter_by_schema_and_time_and_page(store: Store) {
    add_tenants(&store).await;
    let a_call = add_call(&store, "a", 1_000, "+919800000001").await;
    let b_call = add_call(&store, "b", 1_000, "+919800000001").await;
    let mut a_orders = Vec::new();
    for n in 0..5 {
        a_orders.push(
            store
                .add_extraction("a", &a_call, "order", &json!({ "n": n }))
                .await
                .unwrap(),
        );
        store
            .add_extraction("a", &a_call, "contact", &json!({ "n": n }))
            .await
            .unwrap();
    }
    store
        .add_extraction("b", &b_call, "order", &json!({ "n": 99 }))
        .await
        .unwrap();

    let a = Scope::Tenant("a".into());
    let orders = ExtractionFilter {
        tenant: None,
        schema_id: Some("order".to_owned()),
        from_ms: None,
        to_ms: None,
        limit: 2,
        cursor: None,
    };
    let mut walked = Vec::new();
    let mut filter = orders.clone();
    loop {
        let page = store.list_extractions(&a, &filter).await.unwrap();
        for listed in &page.items {
            assert_eq!(listed.tenant_id, "a");
            assert_eq!(listed.extraction.schema_id, "order");
            assert_eq!(listed.extraction.call_id, a_call);
        }
        walked.extend(
            page.items
                .into_iter()
                .map(|l| (l.extraction.created_at_ms, l.extraction.id)),
        );
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
    }
    // Stored within the same millisecond or not, every one comes once, newest first.
    let mut newest_first = walked.clone();
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(walked, newest_first);
    let mut ids: Vec<String> = walked.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    a_orders.sort();
    assert_eq!(ids, a_orders);

    // The operator sees both tenants' orders; b's scope only b's; naming a from b gives none.
    let everything = ExtractionFilter {
        limit: 50,
        ..orders.clone()
    };
    let all = store
        .list_extractions(&Scope::Operator, &everything)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 6);
    let b = Scope::Tenant("b".into());
    assert_eq!(
        store
            .list_extractions(&b, &everything)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let ask_for_a = ExtractionFilter {
        tenant: Some("a".to_owned()),
        ..everything.clone()
    };
    assert!(
        store
            .list_extractions(&b, &ask_for_a)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // No schema: both schemas. A period in the future: nothing.
    let any_schema = ExtractionFilter {
        schema_id: None,
        ..everything.clone()
    };
    assert_eq!(
        store
            .list_extractions(&a, &any_schema)
            .await
            .unwrap()
            .items
            .len(),
        10
    );
    let later = ExtractionFilter {
        from_ms: Some(vaani_store::now_ms() + 60_000),
        ..any_schema.clone()
    };
    assert!(
        store
            .list_extractions(&a, &later)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let earlier = ExtractionFilter {
        to_ms: Some(vaani_store::now_ms() + 60_000),
        from_ms: Some(vaani_store::now_ms() - 60_000),
        ..any_schema
    };
    assert_eq!(
        store
            .list_extractions(&a, &earlier)
            .await
            .unwrap()
            .items
            .len(),
        10
    );
}

async fn analytics_add_up_the_period(store: Store) {
    add_tenants(&store).await;
    let caller = "+919800000001";
    // In the period [10 000, 100 000): two completed (60 s and 30 s), one failed after 10 s,
    // one never answered. Outside it: one completed call before, one after.
    let c1 = add_call(&store, "a", 10_000, caller).await;
    end_call(
        &store,
        "a",
        &c1,
        10_000,
        60_000,
        CallStatus::Completed,
        1_500_000,
    )
    .await;
    let c2 = add_call(&store, "a", 20_000, caller).await;
    end_call(
        &store,
        "a",
        &c2,
        20_000,
        30_000,
        CallStatus::Completed,
        1_000_001,
    )
    .await;
    let c3 = add_call(&store, "a", 30_000, caller).await;
    end_call(
        &store,
        "a",
        &c3,
        30_000,
        10_000,
        CallStatus::Failed,
        250_000,
    )
    .await;
    let _unanswered = add_call(&store, "a", 40_000, caller).await;
    let before = add_call(&store, "a", 9_999, caller).await;
    end_call(&store, "a", &before, 9_999, 1_000, CallStatus::Completed, 7).await;
    let after = add_call(&store, "a", 100_000, caller).await;
    end_call(
        &store,
        "a",
        &after,
        100_000,
        1_000,
        CallStatus::Completed,
        7,
    )
    .await;
    // Tenant b's call in the period does not count for a.
    let b = add_call(&store, "b", 50_000, caller).await;
    end_call(
        &store,
        "b",
        &b,
        50_000,
        1_000,
        CallStatus::Completed,
        9_000_000,
    )
    .await;
    for (tenant, call, schema) in [
        ("a", &c1, "order"),
        ("a", &c1, "contact"),
        ("a", &c2, "order"),
        ("b", &b, "order"),
    ] {
        store
            .add_extraction(tenant, call, schema, &json!({}))
            .await
            .unwrap();
    }

    let period = AnalyticsFilter {
        tenant: None,
        from_ms: Some(10_000),
        to_ms: Some(100_000),
    };
    let a = store
        .analytics(&Scope::Tenant("a".into()), &period)
        .await
        .unwrap();
    assert_eq!(a.calls, 4);
    assert_eq!(a.completed, 2);
    assert_eq!(a.answered, 3);
    assert_eq!(a.completion_rate(), Some(0.5));
    let average = a.average_talk_ms.unwrap();
    assert!((average - 100_000.0 / 3.0).abs() < 1e-6, "{average}");
    assert_eq!(a.cost_inr_micros, 2_750_001);
    // Extractions count by when they were stored (now), not by the call's start.
    assert!(a.extractions_by_schema.is_empty());
    let now = vaani_store::now_ms();
    let today = AnalyticsFilter {
        tenant: None,
        from_ms: Some(now - 60_000),
        to_ms: Some(now + 60_000),
    };
    let a_today = store
        .analytics(&Scope::Tenant("a".into()), &today)
        .await
        .unwrap();
    assert_eq!(
        a_today.extractions_by_schema,
        [("contact".to_owned(), 1), ("order".to_owned(), 2)].into()
    );
    assert_eq!(a_today.calls, 0);

    // The operator: every tenant, or one; a tenant naming another gets nothing.
    let all = store.analytics(&Scope::Operator, &period).await.unwrap();
    assert_eq!(all.calls, 5);
    assert_eq!(all.cost_inr_micros, 11_750_001);
    let only_b = AnalyticsFilter {
        tenant: Some("b".to_owned()),
        ..period.clone()
    };
    let b_figures = store.analytics(&Scope::Operator, &only_b).await.unwrap();
    assert_eq!((b_figures.calls, b_figures.completed), (1, 1));
    assert_eq!(b_figures.average_talk_ms, Some(1_000.0));
    let sneaky = store
        .analytics(&Scope::Tenant("a".into()), &only_b)
        .await
        .unwrap();
    assert_eq!(sneaky, vaani_store::Analytics::default());
    // Open-ended periods.
    let everything = store
        .analytics(&Scope::Tenant("a".into()), &AnalyticsFilter::default())
        .await
        .unwrap();
    assert_eq!(everything.calls, 6);
    assert_eq!(everything.extractions_by_schema.values().sum::<i64>(), 3);
}

async fn analytics_of_nothing_are_zeros(store: Store) {
    add_tenants(&store).await;
    let figures = store
        .analytics(&Scope::Tenant("a".into()), &AnalyticsFilter::default())
        .await
        .unwrap();
    assert_eq!(figures, vaani_store::Analytics::default());
    assert_eq!(figures.completion_rate(), None);
    // A ringing call: counted, not answered, no duration, no cost.
    add_call(&store, "a", 1, "+919800000001").await;
    let figures = store
        .analytics(&Scope::Tenant("a".into()), &AnalyticsFilter::default())
        .await
        .unwrap();
    assert_eq!((figures.calls, figures.answered), (1, 0));
    assert_eq!(figures.average_talk_ms, None);
    assert_eq!(figures.cost_inr_micros, 0);
    assert_eq!(figures.completion_rate(), Some(0.0));
}
