//! Protection against the real binary: the default per-number rate (the 11th call to one
//! number within a minute gets `503` with `Retry-After`), a tenant's concurrent-call limit
//! (`486`), the per-key API rate (`429` with `Retry-After`), the per-tenant metrics, and a log
//! that shows neither a whole phone number nor an API key.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";

/// `name{labels} value` in the Prometheus text, or 0.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name_and_labels)
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

fn metrics(server: &VaaniServer) -> String {
    let (status, text) = server.http_get("/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    text
}

/// A short call: answered, hung up after 100 ms.
fn short_calls(calls: u32) -> Sipp {
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"100\"")
        .args(&[
            "-m",
            &calls.to_string(),
            "-r",
            "20",
            "-l",
            &calls.to_string(),
        ])
}

/// A caller that expects `status` to its INVITE.
fn refused_with(status: u16) -> Sipp {
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", format!("response=\"{status}\""))
}

#[test]
fn the_eleventh_call_to_a_number_within_a_minute_gets_503_with_retry_after() {
    let server = VaaniServer::start(&ServerSpec::demo());
    short_calls(10)
        .run(server.sip_addr(), ECHO, Duration::from_secs(60))
        .assert_success();
    let run = refused_with(503).run(server.sip_addr(), ECHO, Duration::from_secs(20));
    run.assert_success();
    let retry_after = run
        .messages
        .lines()
        .find_map(|line| line.strip_prefix("Retry-After:"))
        .unwrap_or_else(|| panic!("no Retry-After in the 503:\n{}", run.messages));
    let secs: u64 = retry_after.trim().parse().expect("Retry-After seconds");
    assert!((1..=6).contains(&secs), "Retry-After {secs}");
    // The other number is not affected.
    short_calls(1)
        .run(server.sip_addr(), "+918000000001", Duration::from_secs(30))
        .assert_success();

    let text = metrics(&server);
    assert_eq!(
        series(
            &text,
            "vaani_call_refusals_total{reason=\"number_rate\",tenant=\"echo\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        series(&text, "vaani_sip_rejections_total{code=\"503\"}"),
        1.0,
        "{text}"
    );
    // The refusal is logged once, with the number masked.
    let log = server.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("INVITE refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "{log}");
    assert!(refusals[0].contains("+********0099"), "{}", refusals[0]);
    assert!(
        !log.contains("918000000099"),
        "a whole number in the log:\n{log}"
    );
}

#[test]
fn a_tenant_at_its_concurrent_limit_gets_486_and_metrics_show_its_series() {
    let mut spec = ServerSpec::demo();
    let echo = spec
        .tenants
        .iter_mut()
        .find(|t| t.number == ECHO)
        .expect("echo tenant");
    echo.extra = "max_concurrent_calls = 1".to_string();
    let server = VaaniServer::start(&spec);
    let sip = server.sip_addr();
    let first = std::thread::spawn(move || {
        Sipp::new("uac_call_bye.xml")
            .substitute("milliseconds=\"5000\"", "milliseconds=\"4000\"")
            .run(sip, ECHO, Duration::from_secs(30))
    });
    // Wait until the first call is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while series(
        &metrics(&server),
        "vaani_tenant_active_calls{tenant=\"echo\"}",
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "the first call never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    refused_with(486)
        .run(server.sip_addr(), ECHO, Duration::from_secs(20))
        .assert_success();
    // Another tenant is not limited by echo's calls.
    short_calls(1)
        .run(server.sip_addr(), "+918000000001", Duration::from_secs(30))
        .assert_success();
    first.join().expect("first call").assert_success();
    server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .filter(|c| c["dialled"] == ECHO && c["status"] == "completed")
            .count()
            == 1
    });
    // Once the first call has ended, the tenant takes a call again.
    short_calls(1)
        .run(server.sip_addr(), ECHO, Duration::from_secs(30))
        .assert_success();
    server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .filter(|c| c["dialled"] == ECHO && c["status"] == "completed")
            .count()
            == 2
    });
    std::thread::sleep(Duration::from_millis(300));

    let text = metrics(&server);
    for (series_name, expected) in [
        (
            "vaani_call_refusals_total{reason=\"tenant_concurrency\",tenant=\"echo\"}",
            1.0,
        ),
        ("vaani_sip_rejections_total{code=\"486\"}", 1.0),
        (
            "vaani_tenant_calls_total{status=\"completed\",tenant=\"echo\"}",
            2.0,
        ),
        (
            "vaani_tenant_calls_total{status=\"completed\",tenant=\"clinic\"}",
            1.0,
        ),
        ("vaani_calls_total{status=\"completed\"}", 3.0),
        ("vaani_tenant_active_calls{tenant=\"echo\"}", 0.0),
        ("vaani_active_calls", 0.0),
    ] {
        assert_eq!(
            series(&text, series_name),
            expected,
            "{series_name}:\n{text}"
        );
    }
    assert!(
        text.contains("vaani_tenant_active_calls{tenant=\"echo\"} 0"),
        "{text}"
    );
    // No label carries a number or a call id.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("+91"), "a number in a label: {line}");
    }
}

#[test]
fn an_api_key_over_its_rate_gets_429_and_is_never_logged() {
    let mut spec = ServerSpec::demo();
    spec.env.push((
        "VAANI_HTTP__REQUESTS_PER_SECOND_PER_KEY".to_string(),
        "1".to_string(),
    ));
    spec.env.push((
        "VAANI_HTTP__REQUEST_BURST_PER_KEY".to_string(),
        "3".to_string(),
    ));
    let server = VaaniServer::start(&spec);
    let (status, created) =
        server.api_post("/api/v1/keys", &json!({"tenant": "echo", "name": "ci"}));
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_string();

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get_path = |path: &str, bearer: &str| {
        let mut response = agent
            .get(format!("{}{path}", server.http_base()))
            .header("Authorization", format!("Bearer {bearer}"))
            .call()
            .expect("GET");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or(Value::Null);
        (response.status().as_u16(), retry_after, body)
    };
    let get = |bearer: &str| get_path("/api/v1/calls", bearer);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(get(&key));
    }
    // The refused request names a caller's number in its path: the log masks it.
    answers.push(get_path("/api/v1/callers/%2B919876543210", &key));
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses[..3], [200, 200, 200], "{answers:?}");
    let (status, retry_after, body) = &answers[3];
    assert_eq!(*status, 429, "{answers:?}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let secs: u64 = retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&secs), "{secs}");
    // Another key (the operator's) has its own bucket.
    let (status, _, _) = get(vaani_testbench::OPERATOR_KEY);
    assert_eq!(status, 200);
    // After the Retry-After the key is let in again.
    std::thread::sleep(Duration::from_secs(secs));
    assert_eq!(get(&key).0, 200);

    let log = server.log();
    let refused = log
        .lines()
        .find(|line| line.contains("API request refused"))
        .unwrap_or_else(|| panic!("the refusal is not logged:\n{log}"));
    let refused: Value = serde_json::from_str(refused).expect("a JSON line");
    assert_eq!(
        refused["path"], "/api/v1/callers/%2B********3210",
        "{refused}"
    );
    assert_eq!(refused["tenant_id"], Value::Null, "{refused}");
    assert!(
        !log.contains("919876543210"),
        "a whole number in the log:\n{log}"
    );
    assert!(!log.contains(&key), "the API key is in the log:\n{log}");
    assert!(
        !log.contains(vaani_testbench::OPERATOR_KEY),
        "the operator key is in the log:\n{log}"
    );
}

#[test]
fn a_call_the_tenant_places_counts_toward_its_concurrent_limit() {
    // A callee that never answers: the placed call stays ringing (and counts) for the test.
    let silent_callee = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let callee_port = silent_callee.local_addr().expect("addr").port();
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = format!(
        "[trunks.outbound]\nuri = \"sip:127.0.0.1:{callee_port}\"\ncaller_id = \"+918000000099\"\n"
    );
    let echo = spec
        .tenants
        .iter_mut()
        .find(|t| t.number == ECHO)
        .expect("echo tenant");
    echo.extra = "max_concurrent_calls = 1".to_string();
    let server = VaaniServer::start(&spec);

    let place = || {
        server.api_post(
            "/api/v1/calls",
            &json!({ "tenant": "echo", "to": "+919876543210" }),
        )
    };
    let (status, body) = place();
    assert_eq!(status, 202, "{body:#}");
    // A second placed call and an inbound call both find the tenant at its limit.
    let (status, body) = place();
    assert_eq!(status, 429, "{body:#}");
    assert_eq!(body["error"]["code"], "too_many_calls", "{body:#}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tenant"),
        "{body:#}"
    );
    refused_with(486)
        .run(server.sip_addr(), ECHO, Duration::from_secs(20))
        .assert_success();
    let text = metrics(&server);
    assert_eq!(
        series(&text, "vaani_tenant_active_calls{tenant=\"echo\"}"),
        1.0,
        "{text}"
    );
    drop(silent_callee);
}
