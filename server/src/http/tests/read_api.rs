//! In-process tests of the read side of the API: the filtered, paged call list, callers,
//! extractions and analytics. Tenant scoping is tested by calling the handlers with a
//! constructed tenant [`Caller`] (no tenant keys exist at this level).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vaani_store::{CallDirection, CallOutcome, CallStatus, NewCall, Scope, Tenant, TenantStatus};

use super::super::HttpState;
use super::super::auth::Caller;
use super::super::extract::ApiQuery;
use super::{assert_error, body_bytes, get, response_validator, send, state_with_call};

/// The handler's answer (an error becomes its response, as the router would send it).
fn answer(result: Result<Response, super::super::error::ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn json_of(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}

/// A tenant's key, as auth would resolve it.
fn tenant(id: &str) -> Caller {
    Caller {
        scope: Scope::Tenant(id.to_owned()),
    }
}

/// Adds tenant `b` next to the test state's tenant `a`.
async fn add_tenant_b(state: &HttpState) {
    state
        .store
        .upsert_tenant(&Tenant {
            id: "b".to_owned(),
            name: "Tenant b".to_owned(),
            status: TenantStatus::Active,
            created_at_ms: 1_000,
        })
        .await
        .unwrap();
}

/// Inserts a call and returns its id.
async fn add_call(
    state: &HttpState,
    tenant_id: &str,
    started_at_ms: i64,
    caller: &str,
    status: CallStatus,
) -> String {
    let id = vaani_store::new_id();
    state
        .store
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
    if status != CallStatus::Ringing {
        state
            .store
            .mark_answered(tenant_id, &id, started_at_ms + 1_000)
            .await
            .unwrap();
        state
            .store
            .finish_call(
                tenant_id,
                &id,
                &CallOutcome {
                    status,
                    ended_at_ms: started_at_ms + 61_000,
                    end_reason: "caller_hangup".to_owned(),
                    media_stats: None,
                    error: None,
                },
            )
            .await
            .unwrap();
    }
    id
}

fn ids(listed: &Value, list: &str) -> Vec<String> {
    listed[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn calls_filter_and_page_through_the_router() {
    let (state, first) = state_with_call().await; // tenant a, started 10 000, ringing
    let x = "+919800000001";
    let y = "+919800000002";
    let c2 = add_call(&state, "a", 20_000, y, CallStatus::Completed).await;
    let c3 = add_call(&state, "a", 20_000, x, CallStatus::Completed).await;
    let c4 = add_call(&state, "a", 40_000, x, CallStatus::Failed).await;

    let listed = json_of(get(&state, "/api/v1/calls").await).await;
    assert_valid_list(&listed);
    assert_eq!(listed["calls"].as_array().unwrap().len(), 4);
    assert_eq!(listed["next_cursor"], json!(null));

    let list = |query: &'static str| {
        let state = state.clone();
        async move { json_of(get(&state, &format!("/api/v1/calls?{query}")).await).await }
    };
    assert_eq!(ids(&list("status=completed").await, "calls").len(), 2);
    assert_eq!(ids(&list("status=failed").await, "calls"), [c4.as_str()]);
    // `+` escaped, or sent bare (it decodes to a space and is read back as `+`).
    let from_y = ids(&list("caller=%2B919800000002").await, "calls");
    assert_eq!(from_y, [c2.as_str()]);
    assert_eq!(ids(&list("caller=+919800000002").await, "calls"), from_y);
    assert_eq!(
        ids(
            &list("dialled=%2B918000000099&status=ringing").await,
            "calls"
        ),
        [first.as_str()]
    );
    // Unix ms and RFC 3339 mean the same instant; `to` is exclusive.
    let range = ids(&list("from=20000&to=40000").await, "calls");
    assert_eq!(range.len(), 2);
    assert_eq!(
        ids(
            &list("from=1970-01-01T00:00:20Z&to=1970-01-01T05:30:40%2B05:30").await,
            "calls"
        ),
        range
    );

    // Paging: one call a page, following `next_cursor`, visits each call once in order.
    let mut walked = Vec::new();
    let mut uri = "/api/v1/calls?limit=1&tenant=a".to_owned();
    loop {
        let page = json_of(get(&state, &uri).await).await;
        assert_valid_list(&page);
        walked.extend(ids(&page, "calls"));
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/calls?limit=1&tenant=a&cursor={cursor}"),
            None => break,
        }
    }
    let mut tied = [c2, c3];
    tied.sort();
    assert_eq!(
        walked,
        [c4, tied[1].clone(), tied[0].clone(), first],
        "newest first, ties by id descending"
    );
}

fn assert_valid_list(listed: &Value) {
    let validator = response_validator("/api/v1/calls", "get", "200");
    let errors: Vec<String> = validator
        .iter_errors(listed)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn bad_call_filters_are_400_with_their_codes() {
    let (state, _) = state_with_call().await;
    for (query, code) in [
        ("status=done", "invalid_status"),
        ("status=", "invalid_status"),
        ("from=yesterday", "invalid_time"),
        ("to=2024-12-05", "invalid_time"),
        ("from=5000&to=4000", "invalid_range"),
        (
            "from=2024-12-05T10:00:00Z&to=2024-12-05T09:00:00Z",
            "invalid_range",
        ),
        ("cursor=nope", "invalid_cursor"),
        ("cursor=", "invalid_cursor"),
        ("caller=", "invalid_number"),
        ("limit=0", "invalid_limit"),
        ("limit=x", "invalid_query"),
    ] {
        let uri = format!("/api/v1/calls?{query}");
        let response = get(&state, &uri).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    // The key is checked before the filters.
    let response = send(
        &state,
        Method::GET,
        "/api/v1/calls?status=done",
        None,
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// The query of `uri` as the handler's extractor reads it.
async fn query<T: serde::de::DeserializeOwned>(uri: &str) -> ApiQuery<T> {
    use axum::extract::FromRequestParts;
    let (mut parts, _) = axum::http::Request::get(uri).body(()).unwrap().into_parts();
    match ApiQuery::<T>::from_request_parts(&mut parts, &()).await {
        Ok(query) => query,
        Err(_) => panic!("{uri}: not a valid query"),
    }
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_calls() {
    let (state, a_call) = state_with_call().await;
    add_tenant_b(&state).await;
    let b_call = add_call(&state, "b", 20_000, "+919800000001", CallStatus::Completed).await;
    let list = |caller: Caller, uri: &'static str| {
        let state = state.clone();
        async move {
            let query = query(uri).await;
            json_of(answer(
                super::super::calls::list_calls(State(state), caller, query).await,
            ))
            .await
        }
    };
    let all = "/api/v1/calls?caller=%2B919800000001";
    assert_eq!(
        ids(&list(tenant("a"), all).await, "calls"),
        [a_call.as_str()]
    );
    assert_eq!(
        ids(&list(tenant("b"), all).await, "calls"),
        [b_call.as_str()]
    );
    // Naming the other tenant gives an empty list, not its calls.
    let other = "/api/v1/calls?tenant=b";
    assert!(ids(&list(tenant("a"), other).await, "calls").is_empty());
    assert_eq!(
        ids(
            &list(
                Caller {
                    scope: Scope::Operator
                },
                other
            )
            .await,
            "calls"
        ),
        [b_call.as_str()]
    );
}

const ASHA: &str = "+919800000001";

/// The test state with a profile, an extraction and a recording file for Asha's call, and
/// tenant `b` with its own call from the same number. Returns the state, Asha's call at `a`
/// and the recording file.
async fn state_with_caller() -> (Arc<HttpState>, String, std::path::PathBuf) {
    let (state, call_id) = state_with_call().await;
    let store = &state.store;
    store
        .record_caller_call("a", ASHA, 10_000, Some("Asha"), Some(r#"{"likes":"dosa"}"#))
        .await
        .unwrap();
    store
        .add_extraction("a", &call_id, "order", &json!({ "items": ["dosa"] }))
        .await
        .unwrap();
    let path = std::env::temp_dir().join(format!("vaani-erase-{call_id}.wav"));
    std::fs::write(&path, b"RIFF....WAVE").unwrap();
    store
        .set_recording(&vaani_store::Recording {
            tenant_id: "a".to_owned(),
            call_id: call_id.clone(),
            path: path.to_string_lossy().into_owned(),
            duration_ms: 1_000,
            created_at_ms: 20_000,
        })
        .await
        .unwrap();
    add_tenant_b(&state).await;
    add_call(&state, "b", 30_000, ASHA, CallStatus::Completed).await;
    store
        .record_caller_call("b", ASHA, 30_000, Some("Asha at b"), None)
        .await
        .unwrap();
    (state, call_id, path)
}

fn assert_documented(path: &str, method: &str, status: &str, body: &Value) {
    let validator = response_validator(path, method, status);
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?} in {body:#}"
    );
}

#[tokio::test]
async fn callers_list_and_profile() {
    let (state, call_id, _) = state_with_caller().await;
    let listed = json_of(get(&state, "/api/v1/callers?tenant=a").await).await;
    assert_documented("/api/v1/callers", "get", "200", &listed);
    assert_eq!(listed["callers"].as_array().unwrap().len(), 1);
    assert_eq!(listed["callers"][0]["phone"], json!(ASHA));
    assert_eq!(listed["callers"][0]["memory"], json!({ "likes": "dosa" }));
    assert_eq!(listed["next_cursor"], json!(null));

    // `+` as is, or escaped.
    for uri in [
        "/api/v1/callers/+919800000001?tenant=a",
        "/api/v1/callers/%2B919800000001?tenant=a",
    ] {
        let profile = json_of(get(&state, uri).await).await;
        assert_documented("/api/v1/callers/{phone}", "get", "200", &profile);
        assert_eq!(profile["name"], json!("Asha"));
        assert_eq!(profile["call_count"], json!(1));
        assert_eq!(profile["first_call_at_ms"], json!(10_000));
        let recent: Vec<&Value> = profile["recent_calls"].as_array().unwrap().iter().collect();
        assert_eq!(recent.len(), 1, "only tenant a's call");
        assert_eq!(recent[0]["id"], json!(call_id));
    }
    let b = json_of(get(&state, "/api/v1/callers/+919800000001?tenant=b").await).await;
    assert_eq!(b["name"], json!("Asha at b"));
}

#[tokio::test]
async fn callers_errors() {
    let (state, _, _) = state_with_caller().await;
    for (uri, status, code) in [
        (
            "/api/v1/callers",
            StatusCode::BAD_REQUEST,
            "tenant_required",
        ),
        (
            "/api/v1/callers/+919800000001",
            StatusCode::BAD_REQUEST,
            "tenant_required",
        ),
        (
            "/api/v1/callers?tenant=a&cursor=zz",
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "/api/v1/callers?tenant=a&limit=0",
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            "/api/v1/callers/919800000001?tenant=a",
            StatusCode::BAD_REQUEST,
            "invalid_number",
        ),
        (
            "/api/v1/callers/+91abc?tenant=a",
            StatusCode::BAD_REQUEST,
            "invalid_number",
        ),
        (
            "/api/v1/callers/+919800000002?tenant=a",
            StatusCode::NOT_FOUND,
            "caller_not_found",
        ),
    ] {
        let response = get(&state, uri).await;
        let body = assert_error(response, status, code).await;
        let path = if uri.starts_with("/api/v1/callers/") {
            "/api/v1/callers/{phone}"
        } else {
            "/api/v1/callers"
        };
        assert_documented(path, "get", status.as_str(), &body);
    }
    for (method, uri) in [
        (Method::GET, "/api/v1/callers?tenant=a"),
        (Method::GET, "/api/v1/callers/+919800000001?tenant=a"),
        (Method::DELETE, "/api/v1/callers/+919800000001?tenant=a"),
    ] {
        let response = send(&state, method, uri, Some("wrong"), None, Body::empty()).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // Nothing was erased by the refused DELETE.
    assert!(state.store.get_caller("a", ASHA).await.unwrap().is_some());
}

/// Calls a callers handler as tenant `who`, with the query of `uri`.
async fn as_tenant(
    state: &Arc<HttpState>,
    who: &str,
    method: Method,
    uri: &'static str,
) -> Response {
    use super::super::callers;
    use super::super::extract::ApiPath;
    let state = State(state.clone());
    let phone = || ApiPath(ASHA.to_owned());
    answer(match (method, uri.split('?').next().unwrap()) {
        (Method::GET, "/api/v1/callers") => {
            callers::list_callers(state, tenant(who), query(uri).await).await
        }
        (Method::GET, _) => {
            callers::get_caller(state, tenant(who), phone(), query(uri).await).await
        }
        (Method::DELETE, _) => {
            callers::delete_caller(state, tenant(who), phone(), query(uri).await).await
        }
        other => panic!("{other:?}"),
    })
}

#[tokio::test]
async fn a_tenant_sees_and_erases_only_its_own_callers() {
    let (state, _, _) = state_with_caller().await;
    // Without ?tenant= a tenant key means its own tenant.
    let own = json_of(as_tenant(&state, "b", Method::GET, "/api/v1/callers/x").await).await;
    assert_eq!(own["name"], json!("Asha at b"));
    let listed = json_of(as_tenant(&state, "b", Method::GET, "/api/v1/callers").await).await;
    assert_eq!(listed["callers"].as_array().unwrap().len(), 1);
    assert_eq!(listed["callers"][0]["tenant_id"], json!("b"));
    // Naming tenant a: 404 for the profile and the erasure, an empty list.
    for method in [Method::GET, Method::DELETE] {
        let response = as_tenant(&state, "b", method, "/api/v1/callers/x?tenant=a").await;
        assert_error(response, StatusCode::NOT_FOUND, "caller_not_found").await;
    }
    let listed =
        json_of(as_tenant(&state, "b", Method::GET, "/api/v1/callers?tenant=a").await).await;
    assert_eq!(listed, json!({ "callers": [], "next_cursor": null }));
    // b's erasure leaves a's caller alone.
    let erased = json_of(as_tenant(&state, "b", Method::DELETE, "/api/v1/callers/x").await).await;
    assert_eq!(erased["tenant_id"], json!("b"));
    assert!(state.store.get_caller("b", ASHA).await.unwrap().is_none());
    assert!(state.store.get_caller("a", ASHA).await.unwrap().is_some());
}

#[tokio::test]
async fn erasing_a_caller_removes_the_profile_transcripts_and_recording() {
    let (state, call_id, recording) = state_with_caller().await;
    let uri = "/api/v1/callers/%2B919800000001?tenant=a";
    let response = send(
        &state,
        Method::DELETE,
        uri,
        Some(super::KEY),
        None,
        Body::empty(),
    )
    .await;
    let erased = json_of(response).await;
    assert_documented("/api/v1/callers/{phone}", "delete", "200", &erased);
    assert_eq!(
        erased,
        json!({
            "tenant_id": "a",
            "phone": ASHA,
            "profile_deleted": true,
            "calls_redacted": 1,
            "recordings_deleted": 1,
        })
    );
    assert!(!recording.exists(), "the recording file is deleted");
    assert_error(
        get(&state, uri).await,
        StatusCode::NOT_FOUND,
        "caller_not_found",
    )
    .await;
    let call = super::call_json(&state, &call_id).await;
    assert_eq!(call["caller"], json!("redacted"));
    assert_eq!(call["extractions"], json!([]));
    assert_eq!(call["recording"], json!(null));
    // Once erased, there is nothing left to erase.
    let response = send(
        &state,
        Method::DELETE,
        uri,
        Some(super::KEY),
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "caller_not_found").await;
    // Tenant b's data about the same number is untouched.
    assert!(state.store.get_caller("b", ASHA).await.unwrap().is_some());
}

#[tokio::test]
async fn extractions_list_by_schema_and_scope() {
    let (state, call_id, _) = state_with_caller().await;
    state
        .store
        .add_extraction("a", &call_id, "contact", &json!({ "name": "Asha" }))
        .await
        .unwrap();
    let listed = json_of(get(&state, "/api/v1/extractions?schema=order").await).await;
    assert_documented("/api/v1/extractions", "get", "200", &listed);
    let items = listed["extractions"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tenant_id"], json!("a"));
    assert_eq!(items[0]["call_id"], json!(call_id));
    assert_eq!(items[0]["data"], json!({ "items": ["dosa"] }));
    // Paging through both schemas, one a page.
    let first = json_of(get(&state, "/api/v1/extractions?limit=1").await).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = json_of(
        get(
            &state,
            &format!("/api/v1/extractions?limit=1&cursor={cursor}"),
        )
        .await,
    )
    .await;
    assert_eq!(second["next_cursor"], json!(null));
    let mut schemas = vec![
        first["extractions"][0]["schema_id"].as_str().unwrap(),
        second["extractions"][0]["schema_id"].as_str().unwrap(),
    ];
    schemas.sort_unstable();
    assert_eq!(schemas, ["contact", "order"]);
    // Errors.
    for (query, code) in [
        ("cursor=abc", "invalid_cursor"),
        ("from=x", "invalid_time"),
        ("from=10&to=9", "invalid_range"),
        ("limit=501", "invalid_limit"),
    ] {
        let response = get(&state, &format!("/api/v1/extractions?{query}")).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_documented("/api/v1/extractions", "get", "400", &body);
    }
    let response = send(
        &state,
        Method::GET,
        "/api/v1/extractions",
        None,
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A tenant sees only its own; naming another tenant gives nothing.
    let list = |who: &'static str, uri: &'static str| {
        let state = state.clone();
        async move {
            let query = query(uri).await;
            json_of(answer(
                super::super::extractions::list_extractions(State(state), tenant(who), query).await,
            ))
            .await
        }
    };
    assert_eq!(
        list("a", "/api/v1/extractions").await["extractions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list("b", "/api/v1/extractions").await["extractions"],
        json!([])
    );
    assert_eq!(
        list("b", "/api/v1/extractions?tenant=a").await["extractions"],
        json!([])
    );
}

#[tokio::test]
async fn analytics_over_a_period() {
    let (state, _, _) = state_with_caller().await;
    // Tenant a: the ringing call at 10 s, two completed (60 s talk) and one failed.
    add_call(&state, "a", 20_000, ASHA, CallStatus::Completed).await;
    add_call(&state, "a", 30_000, ASHA, CallStatus::Completed).await;
    add_call(&state, "a", 40_000, ASHA, CallStatus::Failed).await;
    let figures = json_of(
        get(
            &state,
            "/api/v1/analytics?tenant=a&from=0&to=1970-01-01T00:01:00Z",
        )
        .await,
    )
    .await;
    assert_documented("/api/v1/analytics", "get", "200", &figures);
    assert_eq!(figures["tenant_id"], json!("a"));
    assert_eq!(figures["from_ms"], json!(0));
    assert_eq!(figures["to_ms"], json!(60_000));
    assert_eq!(figures["calls"], json!(4));
    assert_eq!(figures["completed"], json!(2));
    assert_eq!(figures["completion_rate"], json!(0.5));
    assert_eq!(figures["answered"], json!(3));
    assert_eq!(figures["average_duration_secs"], json!(60.0));
    assert_eq!(figures["cost_inr"], json!(0.0));
    // The extraction was stored now, outside [0, 60 s).
    assert_eq!(figures["extractions_by_schema"], json!({}));
    let all_time = json_of(get(&state, "/api/v1/analytics").await).await;
    assert_eq!(all_time["tenant_id"], json!(null));
    assert_eq!(
        all_time["calls"],
        json!(5),
        "the operator counts every tenant"
    );
    assert_eq!(all_time["extractions_by_schema"], json!({ "order": 1 }));
    // Errors.
    for (query, code) in [
        ("from=2&to=1", "invalid_range"),
        ("to=soon", "invalid_time"),
    ] {
        let response = get(&state, &format!("/api/v1/analytics?{query}")).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_documented("/api/v1/analytics", "get", "400", &body);
    }
    let response = send(
        &state,
        Method::GET,
        "/api/v1/analytics",
        None,
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A tenant: its own figures; another tenant's are not there.
    let run = |who: &'static str, uri: &'static str| {
        let state = state.clone();
        async move {
            let query = query(uri).await;
            answer(super::super::analytics::analytics(State(state), tenant(who), query).await)
        }
    };
    let b = json_of(run("b", "/api/v1/analytics").await).await;
    assert_eq!(
        (b["tenant_id"].clone(), b["calls"].clone()),
        (json!("b"), json!(1))
    );
    let response = run("b", "/api/v1/analytics?tenant=a").await;
    let body = assert_error(response, StatusCode::NOT_FOUND, "unknown_tenant").await;
    assert_documented("/api/v1/analytics", "get", "404", &body);
}
