//! The read side of the API against the real binary: real sipp calls, then the call list
//! filtered and paged, the callers (profile and erasure on request), extractions and analytics.
//! Tenant scoping with tenant keys is tested in the isolation matrix; here the operator key
//! narrows with `?tenant=`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaani_testbench::{OPERATOR_KEY, ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";
const ASHA: &str = "+919800000011";
const RAVI: &str = "+919800000022";

/// One sipp call from `caller` to the echo line, hung up after a second.
fn call_from(server: &VaaniServer, caller: &str) {
    Sipp::new("uac_call_bye.xml")
        .substitute("+9198000[call_number]", caller)
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), ECHO, Duration::from_secs(30))
        .assert_success();
}

/// GET with the operator key: status and parsed body.
fn get(server: &VaaniServer, path: &str) -> (u16, Value) {
    let (status, body) = server
        .http_get(path, Some(OPERATOR_KEY))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
    (status, body)
}

/// DELETE with `key`: status and parsed body.
fn delete(server: &VaaniServer, path: &str, key: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent.delete(format!("{}{path}", server.http_base()));
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let mut response = request
        .call()
        .unwrap_or_else(|e| panic!("DELETE {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<String> {
    list["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no calls in {list}"))
        .iter()
        .map(|call| call["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], json!(code), "{}", answer.1);
}

#[test]
fn calls_callers_extractions_and_analytics_after_real_calls() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let before_calls = now_ms();
    call_from(&server, ASHA);
    call_from(&server, RAVI);
    call_from(&server, ASHA);
    server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.len() == 3 && calls.iter().all(|c| c["status"] == "completed")
    });
    // The caller profiles are written as the calls end; wait for Asha's second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let asha = loop {
        let (status, profile) = get(&server, &format!("/api/v1/callers/{ASHA}?tenant=echo"));
        if status == 200 && profile["call_count"] == json!(2) {
            break profile;
        }
        assert!(
            Instant::now() < deadline,
            "{status} {profile}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // Paging: two calls a page, then the last one, newest first, each once.
    let (status, first) = get(&server, "/api/v1/calls?limit=2");
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let (status, second) = get(&server, &format!("/api/v1/calls?limit=2&cursor={cursor}"));
    assert_eq!(status, 200, "{second}");
    assert_eq!(ids(&second).len(), 1);
    assert_eq!(second["next_cursor"], json!(null));
    let walked: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    let (_, all) = get(&server, "/api/v1/calls");
    assert_eq!(walked, ids(&all), "the pages are the whole list, in order");
    assert_eq!(all["next_cursor"], json!(null));
    let started: Vec<i64> = all["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["started_at_ms"].as_i64().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]), "{started:?}");

    // Filters.
    let from_asha = ids(&get(&server, "/api/v1/calls?caller=%2B919800000011").1);
    assert_eq!(from_asha.len(), 2);
    assert_eq!(
        ids(&get(
            &server,
            "/api/v1/calls?caller=%2B919800000022&status=completed"
        )
        .1)
        .len(),
        1
    );
    assert!(ids(&get(&server, "/api/v1/calls?status=failed").1).is_empty());
    assert_eq!(
        ids(&get(&server, "/api/v1/calls?dialled=%2B918000000099").1).len(),
        3
    );
    assert!(ids(&get(&server, "/api/v1/calls?dialled=%2B918000000001").1).is_empty());
    let newest = started[0];
    assert_eq!(
        ids(&get(&server, &format!("/api/v1/calls?from={newest}")).1).len(),
        1
    );
    assert_eq!(
        ids(&get(
            &server,
            &format!("/api/v1/calls?from={before_calls}&to=2999-01-01T00:00:00Z")
        )
        .1)
        .len(),
        3
    );
    assert!(ids(&get(&server, "/api/v1/calls?tenant=clinic").1).is_empty());
    assert_error(
        get(&server, "/api/v1/calls?status=nope"),
        400,
        "invalid_status",
    );
    assert_error(
        get(&server, "/api/v1/calls?cursor=zz"),
        400,
        "invalid_cursor",
    );
    assert_error(
        get(&server, "/api/v1/calls?from=9&to=8"),
        400,
        "invalid_range",
    );

    // Callers.
    assert_eq!(asha["name"], json!(null));
    let recent: BTreeSet<String> = asha["recent_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recent, from_asha.into_iter().collect());
    let (status, callers) = get(&server, "/api/v1/callers?tenant=echo&limit=1");
    assert_eq!(status, 200, "{callers}");
    assert_eq!(
        callers["callers"][0]["phone"],
        json!(ASHA),
        "the latest caller"
    );
    let cursor = callers["next_cursor"].as_str().expect("a second page");
    let (_, rest) = get(
        &server,
        &format!("/api/v1/callers?tenant=echo&limit=1&cursor={cursor}"),
    );
    assert_eq!(rest["callers"][0]["phone"], json!(RAVI));
    assert_eq!(rest["next_cursor"], json!(null));
    assert_error(get(&server, "/api/v1/callers"), 400, "tenant_required");
    assert_error(
        get(&server, &format!("/api/v1/callers/{ASHA}?tenant=clinic")),
        404,
        "caller_not_found",
    );
    assert_error(
        get(&server, "/api/v1/callers/9198?tenant=echo"),
        400,
        "invalid_number",
    );

    // Extractions (the echo plugin extracts nothing) and analytics.
    let (status, extractions) = get(&server, "/api/v1/extractions?tenant=echo");
    assert_eq!(status, 200, "{extractions}");
    assert_eq!(
        extractions,
        json!({ "extractions": [], "next_cursor": null })
    );
    let (status, figures) = get(
        &server,
        &format!("/api/v1/analytics?tenant=echo&from={before_calls}"),
    );
    assert_eq!(status, 200, "{figures}");
    assert_eq!(figures["calls"], json!(3), "{figures}");
    assert_eq!(figures["completed"], json!(3), "{figures}");
    assert_eq!(figures["completion_rate"], json!(1.0), "{figures}");
    let average = figures["average_duration_secs"]
        .as_f64()
        .expect("a duration");
    assert!((0.5..10.0).contains(&average), "{figures}");
    assert!(figures["cost_inr"].as_f64().is_some(), "{figures}");
    let (_, clinic) = get(&server, "/api/v1/analytics?tenant=clinic");
    assert_eq!(clinic["calls"], json!(0), "{clinic}");
    assert_eq!(clinic["completion_rate"], json!(null), "{clinic}");

    // Erasing Ravi on request: the profile goes, his call stays, redacted.
    let path = "/api/v1/callers/%2B919800000022?tenant=echo";
    assert_error(delete(&server, path, None), 401, "unauthorized");
    assert_error(delete(&server, path, Some("wrong")), 401, "unauthorized");
    let (status, erased) = delete(&server, path, Some(OPERATOR_KEY));
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["profile_deleted"], json!(true), "{erased}");
    assert_eq!(erased["calls_redacted"], json!(1), "{erased}");
    assert_error(get(&server, path), 404, "caller_not_found");
    assert!(ids(&get(&server, "/api/v1/calls?caller=%2B919800000022").1).is_empty());
    let (_, all) = get(&server, "/api/v1/calls");
    let callers: Vec<&str> = all["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["caller"].as_str().unwrap())
        .collect();
    assert_eq!(callers.len(), 3);
    assert_eq!(callers.iter().filter(|c| **c == "redacted").count(), 1);
    assert!(
        !server.log().contains(RAVI),
        "the number is masked in the log"
    );
    assert_error(
        delete(&server, path, Some(OPERATOR_KEY)),
        404,
        "caller_not_found",
    );

    // Every new endpoint needs the key.
    for path in [
        "/api/v1/callers?tenant=echo",
        "/api/v1/extractions",
        "/api/v1/analytics",
    ] {
        let (status, body) = server.http_get(path, None).unwrap();
        assert_eq!(status, 401, "{path}: {body}");
    }
}

/// The current time as unix ms (as the store stamps rows).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
