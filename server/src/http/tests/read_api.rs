//! In-process tests of the read side of the API: the filtered, paged call list, callers,
//! extractions and analytics. Tenant scoping is tested by calling the handlers with a
//! constructed tenant [`Caller`] (no tenant keys exist at this level).

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
