//! Every repository function, run against an in-memory SQLite database, a SQLite file
//! database and a PostgreSQL database.

#[macro_use]
mod common;

use std::path::PathBuf;

use serde_json::json;
use vaani_store::{
    CallDirection, CallFilter, CallOutcome, CallStatus, NewCall, NewTranscriptLine, Scope, Speaker,
    Store, StoreError, Tenant, TenantStatus, Trunk, new_id,
};

/// A database file in a fresh temporary directory, removed on drop.
struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("vaani-store-test-{}", new_id()));
        TempDb { dir }
    }

    fn url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.join("db").join("vaani.db").display()
        )
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs each listed `async fn(Store)` on `sqlite::memory:`, on a SQLite temp file and on a
/// fresh PostgreSQL database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = vaani_store::Store::connect("sqlite::memory:").await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
        mod file {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TempDb::new();
                    let store = vaani_store::Store::connect(&db.url()).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _db) = crate::common::postgres_store().await;
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

on_both_backends!(
    tenants_upsert_get_list,
    trunks_upsert_and_get,
    phone_numbers_route_to_tenant,
    caller_upsert_counts_calls_and_keeps_memory,
    call_lifecycle_is_recorded,
    updates_to_unknown_or_foreign_calls_are_not_found,
    insert_call_for_unknown_tenant_is_not_found,
    call_detail_has_transcript_extractions_and_events,
    call_children_refuse_another_tenants_call,
    list_calls_is_newest_first_and_limited,
    tenant_scope_hides_other_tenants_calls,
    crash_recovery_fails_unfinished_calls,
    kv_set_get_delete_per_tenant,
    clones_share_one_database,
);

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.to_owned(),
        name: format!("Tenant {id}"),
        status: TenantStatus::Active,
        created_at_ms: 1_000,
    }
}

fn new_call(tenant_id: &str, started_at_ms: i64) -> NewCall {
    NewCall {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        external_id: Some(format!("CA{started_at_ms}")),
        direction: CallDirection::Inbound,
        caller: "+919800000001".to_owned(),
        dialled: "+918000000001".to_owned(),
        status: CallStatus::Ringing,
        started_at_ms,
        plugin_name: None,
        plugin_version: None,
    }
}

/// Stores tenants `a` and `b`.
async fn two_tenants(store: &Store) {
    store.upsert_tenant(&tenant("a")).await.unwrap();
    store.upsert_tenant(&tenant("b")).await.unwrap();
}

async fn tenants_upsert_get_list(store: Store) {
    assert_eq!(store.get_tenant("clinic").await.unwrap(), None);
    assert!(store.list_tenants().await.unwrap().is_empty());

    store.upsert_tenant(&tenant("clinic")).await.unwrap();
    store.upsert_tenant(&tenant("echo")).await.unwrap();
    let updated = Tenant {
        id: "clinic".to_owned(),
        name: "Sunny Clinic".to_owned(),
        status: TenantStatus::Suspended,
        created_at_ms: 99_999,
    };
    store.upsert_tenant(&updated).await.unwrap();

    let clinic = store.get_tenant("clinic").await.unwrap().unwrap();
    assert_eq!(clinic.name, "Sunny Clinic");
    // The upsert is the config seed: it refreshes the name only, so a status set over the API
    // survives a restart (and the seed cannot suspend or revive a tenant).
    assert_eq!(clinic.status, TenantStatus::Active);
    assert_eq!(clinic.created_at_ms, 1_000, "created_at is kept on update");

    let ids: Vec<String> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["clinic", "echo"]);
}

async fn trunks_upsert_and_get(store: Store) {
    let mut trunk = Trunk {
        id: "local".to_owned(),
        name: "Loopback".to_owned(),
        allowed_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
    };
    store.upsert_trunk(&trunk).await.unwrap();
    assert_eq!(store.get_trunk("local").await.unwrap(), Some(trunk.clone()));

    trunk.allowed_cidrs = vec!["10.0.0.0/8".to_owned()];
    trunk.name = "Private".to_owned();
    store.upsert_trunk(&trunk).await.unwrap();
    assert_eq!(store.get_trunk("local").await.unwrap(), Some(trunk));
    assert_eq!(store.get_trunk("other").await.unwrap(), None);
}

async fn phone_numbers_route_to_tenant(store: Store) {
    two_tenants(&store).await;
    let trunk = Trunk {
        id: "local".to_owned(),
        name: "Loopback".to_owned(),
        allowed_cidrs: vec![],
    };
    store.upsert_trunk(&trunk).await.unwrap();

    store
        .assign_phone_number("a", "+918000000001", Some("local"))
        .await
        .unwrap();
    store
        .assign_phone_number("b", "+918000000099", None)
        .await
        .unwrap();
    assert_eq!(
        store.tenant_for_number("+918000000001").await.unwrap(),
        Some("a".to_owned())
    );
    assert_eq!(
        store.tenant_for_number("+918000000099").await.unwrap(),
        Some("b".to_owned())
    );
    assert_eq!(store.tenant_for_number("+10000000000").await.unwrap(), None);

    // Assigning another tenant's number does not move it (tenancy.rs tests this in full).
    let err = store
        .assign_phone_number("b", "+918000000001", Some("local"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        store.tenant_for_number("+918000000001").await.unwrap(),
        Some("a".to_owned())
    );

    let err = store
        .assign_phone_number("nobody", "+918000000002", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = store
        .assign_phone_number("a", "+918000000002", Some("no-such-trunk"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn caller_upsert_counts_calls_and_keeps_memory(store: Store) {
    two_tenants(&store).await;
    let phone = "+919800000001";
    assert_eq!(store.get_caller("a", phone).await.unwrap(), None);

    let first = store
        .record_caller_call("a", phone, 10_000, None, None)
        .await
        .unwrap();
    assert_eq!(first.call_count, 1);
    assert_eq!(first.first_call_at_ms, 10_000);
    assert_eq!(first.last_call_at_ms, 10_000);
    assert_eq!(first.name, None);

    store
        .record_caller_call("a", phone, 20_000, Some("Asha"), Some(r#"{"visits":1}"#))
        .await
        .unwrap();
    let third = store
        .record_caller_call("a", phone, 30_000, None, None)
        .await
        .unwrap();
    assert_eq!(third.call_count, 3);
    assert_eq!(third.first_call_at_ms, 10_000);
    assert_eq!(third.last_call_at_ms, 30_000);
    assert_eq!(
        third.name.as_deref(),
        Some("Asha"),
        "None keeps the old name"
    );
    assert_eq!(third.memory_json.as_deref(), Some(r#"{"visits":1}"#));

    let fourth = store
        .record_caller_call("a", phone, 40_000, None, Some(r#"{"visits":2}"#))
        .await
        .unwrap();
    assert_eq!(fourth.memory_json.as_deref(), Some(r#"{"visits":2}"#));
    assert_eq!(store.get_caller("a", phone).await.unwrap(), Some(fourth));

    // The same phone number is a different caller for tenant b.
    assert_eq!(store.get_caller("b", phone).await.unwrap(), None);
    let other = store
        .record_caller_call("b", phone, 50_000, None, None)
        .await
        .unwrap();
    assert_eq!(other.call_count, 1);
    assert_eq!(other.name, None);

    let err = store
        .record_caller_call("nobody", phone, 1, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
}

async fn call_lifecycle_is_recorded(store: Store) {
    two_tenants(&store).await;
    let call = new_call("a", 100_000);
    store.insert_call(&call).await.unwrap();

    let detail = store
        .get_call(&Scope::Tenant("a".into()), &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.call.status, CallStatus::Ringing);
    assert_eq!(detail.call.external_id.as_deref(), Some("CA100000"));
    assert_eq!(detail.call.answered_at_ms, None);
    assert_eq!(detail.call.dtmf, "");

    store.mark_answered("a", &call.id, 100_500).await.unwrap();
    store
        .set_call_plugin("a", &call.id, "clinic", "0.3.1")
        .await
        .unwrap();
    for digit in ['1', '2', '#'] {
        store.append_dtmf("a", &call.id, digit).await.unwrap();
    }
    let answered = store
        .get_call(&Scope::Operator, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered.call.status, CallStatus::InProgress);
    assert_eq!(answered.call.answered_at_ms, Some(100_500));
    assert_eq!(answered.call.dtmf, "12#");
    assert_eq!(answered.call.plugin_name.as_deref(), Some("clinic"));
    assert_eq!(answered.call.plugin_version.as_deref(), Some("0.3.1"));

    let outcome = CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms: 160_000,
        end_reason: "caller_hangup".to_owned(),
        media_stats: Some(json!({"packets_received": 2975, "jitter_ms": 3.5})),
        error: None,
    };
    store.finish_call("a", &call.id, &outcome).await.unwrap();
    let done = store
        .get_call(&Scope::Operator, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.call.status, CallStatus::Completed);
    assert_eq!(done.call.ended_at_ms, Some(160_000));
    assert_eq!(done.call.end_reason.as_deref(), Some("caller_hangup"));
    assert_eq!(done.call.media_stats, outcome.media_stats);
    assert_eq!(done.call.error, None);

    // Answering late does not reopen a finished call.
    store.mark_answered("a", &call.id, 170_000).await.unwrap();
    let still = store
        .get_call(&Scope::Operator, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.call.status, CallStatus::Completed);

    // A failed call records its error.
    let failed = new_call("a", 200_000);
    store.insert_call(&failed).await.unwrap();
    let outcome = CallOutcome {
        status: CallStatus::Failed,
        ended_at_ms: 200_100,
        end_reason: "plugin_trap".to_owned(),
        media_stats: None,
        error: Some("wasm trap: unreachable".to_owned()),
    };
    store.finish_call("a", &failed.id, &outcome).await.unwrap();
    let record = store
        .get_call(&Scope::Operator, &failed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.call.status, CallStatus::Failed);
    assert_eq!(record.call.error.as_deref(), Some("wasm trap: unreachable"));
    assert_eq!(record.call.media_stats, None);
}

async fn updates_to_unknown_or_foreign_calls_are_not_found(store: Store) {
    two_tenants(&store).await;
    let call = new_call("a", 1);
    store.insert_call(&call).await.unwrap();
    let outcome = CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms: 2,
        end_reason: "caller_hangup".to_owned(),
        media_stats: None,
        error: None,
    };
    for (tenant_id, call_id) in [("a", "no-such-call"), ("b", call.id.as_str())] {
        let errors = [
            store
                .mark_answered(tenant_id, call_id, 5)
                .await
                .unwrap_err(),
            store
                .append_dtmf(tenant_id, call_id, '5')
                .await
                .unwrap_err(),
            store
                .finish_call(tenant_id, call_id, &outcome)
                .await
                .unwrap_err(),
            store
                .set_call_plugin(tenant_id, call_id, "x", "1")
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert!(
                matches!(err, StoreError::NotFound { what: "call", .. }),
                "{err}"
            );
        }
    }
    // Tenant b's attempts left tenant a's call untouched.
    let record = store
        .get_call(&Scope::Operator, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.call.status, CallStatus::Ringing);
    assert_eq!(record.call.dtmf, "");
}

async fn insert_call_for_unknown_tenant_is_not_found(store: Store) {
    let err = store.insert_call(&new_call("nobody", 1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
}

async fn call_detail_has_transcript_extractions_and_events(store: Store) {
    two_tenants(&store).await;
    let call = new_call("a", 1_000);
    store.insert_call(&call).await.unwrap();

    // Added out of order; read back ordered by start time.
    store
        .add_transcript_line(
            "a",
            &call.id,
            &NewTranscriptLine {
                speaker: Speaker::Caller,
                text: "I need an appointment".to_owned(),
                start_ms: 3_000,
                end_ms: 4_500,
                confidence: Some(0.875),
            },
        )
        .await
        .unwrap();
    let greeting_id = store
        .add_transcript_line(
            "a",
            &call.id,
            &NewTranscriptLine {
                speaker: Speaker::Agent,
                text: "Hello, Sunny Clinic.".to_owned(),
                start_ms: 0,
                end_ms: 2_000,
                confidence: None,
            },
        )
        .await
        .unwrap();
    let data = json!({"patient": "Asha", "slot": "2026-06-01T10:00"});
    store
        .add_extraction("a", &call.id, "appointment", &data)
        .await
        .unwrap();
    store
        .add_call_event("a", &call.id, 1_700, "plugin_log", "booked")
        .await
        .unwrap();
    store
        .add_call_event("a", &call.id, 1_600, "dtmf", "1")
        .await
        .unwrap();

    let detail = store
        .get_call(&Scope::Tenant("a".into()), &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.transcript.len(), 2);
    assert_eq!(detail.transcript[0].id, greeting_id);
    assert_eq!(detail.transcript[0].speaker, Speaker::Agent);
    assert_eq!(detail.transcript[0].confidence, None);
    assert_eq!(detail.transcript[1].speaker, Speaker::Caller);
    assert_eq!(detail.transcript[1].text, "I need an appointment");
    assert_eq!(
        (detail.transcript[1].start_ms, detail.transcript[1].end_ms),
        (3_000, 4_500)
    );
    assert_eq!(detail.transcript[1].confidence, Some(0.875));
    assert!(detail.transcript.iter().all(|l| l.call_id == call.id));

    assert_eq!(detail.extractions.len(), 1);
    assert_eq!(detail.extractions[0].schema_id, "appointment");
    assert_eq!(detail.extractions[0].data, data);
    assert!(detail.extractions[0].created_at_ms > 0);

    let kinds: Vec<&str> = detail.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["dtmf", "plugin_log"], "events ordered by time");
    assert_eq!(detail.events[1].detail, "booked");
    assert_eq!(detail.events[0].at_ms, 1_600);

    // The JSON shape the HTTP API returns: call fields flattened, plus the lists.
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["id"], json!(call.id));
    assert_eq!(json["status"], json!("ringing"));
    assert_eq!(json["direction"], json!("inbound"));
    assert_eq!(json["transcript"][0]["speaker"], json!("agent"));
    assert_eq!(json["extractions"][0]["data"]["patient"], json!("Asha"));
    assert_eq!(json["events"][1]["kind"], json!("plugin_log"));
}

async fn call_children_refuse_another_tenants_call(store: Store) {
    two_tenants(&store).await;
    let call = new_call("a", 1);
    store.insert_call(&call).await.unwrap();
    let line = NewTranscriptLine {
        speaker: Speaker::Caller,
        text: "hi".to_owned(),
        start_ms: 0,
        end_ms: 1,
        confidence: None,
    };
    let errors = [
        store
            .add_transcript_line("b", &call.id, &line)
            .await
            .unwrap_err(),
        store
            .add_extraction("b", &call.id, "s", &json!({}))
            .await
            .unwrap_err(),
        store
            .add_call_event("b", &call.id, 1, "dtmf", "1")
            .await
            .unwrap_err(),
        store
            .add_transcript_line("a", "no-such-call", &line)
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(err, StoreError::NotFound { what: "call", .. }),
            "{err}"
        );
    }
    let detail = store
        .get_call(&Scope::Operator, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert!(detail.transcript.is_empty());
    assert!(detail.extractions.is_empty());
    assert!(detail.events.is_empty());
}

async fn list_calls_is_newest_first_and_limited(store: Store) {
    two_tenants(&store).await;
    let mut ids = Vec::new();
    for started in [5_000, 1_000, 3_000, 4_000, 2_000] {
        let call = new_call("a", started);
        store.insert_call(&call).await.unwrap();
        ids.push((started, call.id));
    }
    ids.sort();
    ids.reverse();
    let newest_first: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();

    let scope = Scope::Tenant("a".into());
    let all = store
        .list_calls(&scope, &CallFilter::default())
        .await
        .unwrap();
    let listed: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(listed, newest_first);

    let three = CallFilter {
        tenant: None,
        limit: 3,
        ..CallFilter::default()
    };
    let listed: Vec<String> = store
        .list_calls(&scope, &three)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, newest_first[..3]);

    let zero = CallFilter {
        tenant: None,
        limit: 0,
        ..CallFilter::default()
    };
    assert_eq!(
        store.list_calls(&scope, &zero).await.unwrap().len(),
        1,
        "limit clamps to 1"
    );
    let huge = CallFilter {
        tenant: None,
        limit: u32::MAX,
        ..CallFilter::default()
    };
    assert_eq!(huge.effective_limit(), 500);
    assert_eq!(store.list_calls(&scope, &huge).await.unwrap().len(), 5);
    assert_eq!(CallFilter::default().limit, 50);
}

async fn tenant_scope_hides_other_tenants_calls(store: Store) {
    two_tenants(&store).await;
    let a_call = new_call("a", 1_000);
    let b_call = new_call("b", 2_000);
    store.insert_call(&a_call).await.unwrap();
    store.insert_call(&b_call).await.unwrap();
    let a = Scope::Tenant("a".into());
    let b = Scope::Tenant("b".into());
    let ids = |calls: Vec<vaani_store::CallRecord>| -> Vec<String> {
        calls.into_iter().map(|c| c.id).collect()
    };

    // Tenant b cannot see tenant a's call, by id or in a list.
    assert_eq!(store.get_call(&b, &a_call.id).await.unwrap(), None);
    assert!(store.get_call(&a, &a_call.id).await.unwrap().is_some());
    assert_eq!(
        ids(store.list_calls(&b, &CallFilter::default()).await.unwrap()),
        [b_call.id.as_str()]
    );
    // Asking for another tenant's calls through the filter yields nothing.
    let ask_for_a = CallFilter {
        tenant: Some("a".into()),
        limit: 50,
        ..CallFilter::default()
    };
    assert!(store.list_calls(&b, &ask_for_a).await.unwrap().is_empty());

    // The operator sees both, and can narrow to one tenant.
    assert!(
        store
            .get_call(&Scope::Operator, &a_call.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        ids(store
            .list_calls(&Scope::Operator, &CallFilter::default())
            .await
            .unwrap()),
        [b_call.id.clone(), a_call.id.clone()]
    );
    assert_eq!(
        ids(store
            .list_calls(&Scope::Operator, &ask_for_a)
            .await
            .unwrap()),
        [a_call.id.as_str()]
    );
}

async fn crash_recovery_fails_unfinished_calls(store: Store) {
    two_tenants(&store).await;
    let ringing = new_call("a", 1);
    let answered = new_call("b", 2);
    let completed = new_call("a", 3);
    for call in [&ringing, &answered, &completed] {
        store.insert_call(call).await.unwrap();
    }
    store.mark_answered("b", &answered.id, 10).await.unwrap();
    let outcome = CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms: 20,
        end_reason: "caller_hangup".to_owned(),
        media_stats: None,
        error: None,
    };
    store
        .finish_call("a", &completed.id, &outcome)
        .await
        .unwrap();

    assert_eq!(store.mark_unfinished_calls_failed(99_000).await.unwrap(), 2);
    for id in [&ringing.id, &answered.id] {
        let call = store
            .get_call(&Scope::Operator, id)
            .await
            .unwrap()
            .unwrap()
            .call;
        assert_eq!(call.status, CallStatus::Failed);
        assert_eq!(call.ended_at_ms, Some(99_000));
        assert_eq!(call.end_reason.as_deref(), Some("server_restart"));
        assert!(call.error.is_some());
    }
    let untouched = store
        .get_call(&Scope::Operator, &completed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.call.status, CallStatus::Completed);
    assert_eq!(untouched.call.ended_at_ms, Some(20));

    assert_eq!(
        store.mark_unfinished_calls_failed(100_000).await.unwrap(),
        0
    );
}

async fn kv_set_get_delete_per_tenant(store: Store) {
    two_tenants(&store).await;
    assert_eq!(store.kv_get("a", "k").await.unwrap(), None);
    store.kv_set("a", "k", b"\x00\xffbinary").await.unwrap();
    store.kv_set("b", "k", b"other").await.unwrap();
    assert_eq!(
        store.kv_get("a", "k").await.unwrap().as_deref(),
        Some(&b"\x00\xffbinary"[..])
    );
    store.kv_set("a", "k", b"v2").await.unwrap();
    assert_eq!(
        store.kv_get("a", "k").await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(
        store.kv_get("b", "k").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );

    store.kv_set("a", "j", b"first").await.unwrap();
    assert_eq!(
        store.kv_list("a").await.unwrap(),
        vec![
            ("j".to_string(), b"first".to_vec()),
            ("k".to_string(), b"v2".to_vec())
        ]
    );
    assert_eq!(
        store.kv_list("b").await.unwrap(),
        vec![("k".to_string(), b"other".to_vec())]
    );
    assert!(store.kv_delete("a", "j").await.unwrap());

    assert!(store.kv_delete("a", "k").await.unwrap());
    assert!(!store.kv_delete("a", "k").await.unwrap());
    assert_eq!(store.kv_get("a", "k").await.unwrap(), None);
    assert_eq!(
        store.kv_get("b", "k").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );

    let err = store.kv_set("nobody", "k", b"v").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
}

async fn clones_share_one_database(store: Store) {
    let clone = store.clone();
    clone.upsert_tenant(&tenant("a")).await.unwrap();
    assert!(store.get_tenant("a").await.unwrap().is_some());
    store.ping().await.unwrap();
}

/// Stores a call through one store on `url`, closes it, and finds the call through another
/// (which re-runs the already applied migrations).
async fn data_survives_reconnect(url: &str) {
    let store = Store::connect(url).await.unwrap();
    store.upsert_tenant(&tenant("a")).await.unwrap();
    let call = new_call("a", 1);
    store.insert_call(&call).await.unwrap();
    store.close().await;

    let again = Store::connect(url).await.unwrap();
    assert!(
        again
            .get_call(&Scope::Operator, &call.id)
            .await
            .unwrap()
            .is_some()
    );
    again.close().await;
}

#[tokio::test]
async fn file_database_keeps_data_across_reconnect() {
    let db = TempDb::new();
    data_survives_reconnect(&db.url()).await;
}

#[tokio::test]
async fn postgres_database_keeps_data_across_reconnect() {
    let db = common::TestDatabase::create().await;
    data_survives_reconnect(db.url()).await;
}

#[tokio::test]
async fn postgresql_scheme_is_accepted_too() {
    let db = common::TestDatabase::create().await;
    let url = db.url().replacen("postgres://", "postgresql://", 1);
    assert!(url.starts_with("postgresql://"), "{url}");
    let store = Store::connect(&url).await.unwrap();
    store.upsert_tenant(&tenant("a")).await.unwrap();
    assert_eq!(store.list_tenants().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn postgres_databases_are_separate() {
    let (one, _one_db) = common::postgres_store().await;
    let (two, _two_db) = common::postgres_store().await;
    one.upsert_tenant(&tenant("a")).await.unwrap();
    assert!(two.get_tenant("a").await.unwrap().is_none());
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn the_test_database_is_dropped_even_when_the_test_panics() {
    let (store, db) = common::postgres_store().await;
    let name = db.name().to_owned();
    assert!(common::database_exists(&name).await);
    // A failing test: it panics while holding the guard and an open pool.
    let failed = tokio::spawn(async move {
        let _db = db;
        store.upsert_tenant(&tenant("a")).await.unwrap();
        panic!("a test failing on purpose");
    })
    .await;
    assert!(failed.unwrap_err().is_panic());
    assert!(!common::database_exists(&name).await, "{name} was dropped");
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let err = Store::connect("postgres://vaani:hunter2@127.0.0.1:1/vaani")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    let shown = err.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://vaani:***@127.0.0.1:1/vaani"),
        "{shown}"
    );
    // The cause is named, not only the pool's timeout.
    assert!(shown.contains("refused"), "{shown}");
}

#[tokio::test]
async fn in_memory_databases_are_separate() {
    let one = Store::connect("sqlite::memory:").await.unwrap();
    let two = Store::connect("sqlite::memory:").await.unwrap();
    one.upsert_tenant(&tenant("a")).await.unwrap();
    assert!(two.get_tenant("a").await.unwrap().is_none());
}

#[test]
fn call_status_text_round_trips() {
    for status in CallStatus::ALL {
        assert_eq!(status.as_str().parse::<CallStatus>().unwrap(), status);
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str()),
            "serde and as_str agree"
        );
    }
    assert_eq!(CallStatus::InProgress.as_str(), "in_progress");
    assert_eq!(CallStatus::NoAnswer.as_str(), "no_answer");
    assert_eq!("busy".parse::<CallStatus>().unwrap(), CallStatus::Busy);
    assert!(CallStatus::Busy.is_final());
    assert!("engaged".parse::<CallStatus>().is_err());
    assert!(!CallStatus::Ringing.is_final());
    assert!(!CallStatus::InProgress.is_final());
    assert!(CallStatus::Rejected.is_final());
}
