//! Issue 6's "done when", end to end on PostgreSQL: a tenant is created over the API, given a
//! key, a number, a plugin and a webhook endpoint; a real call reaches its plugin; the tenant
//! receives signed `call.started`, `call.ended` and `call.analyzed` webhooks and reads
//! everything about the call with its own key (list, detail with transcript, DTMF, events,
//! latency, cost and media quality, the caller's profile, analytics, the delivery log), which
//! another tenant's key cannot; and it all survives a kill -9 and restart of the server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaani_testbench::webhook_receiver::{WebhookReceiver, signature_of};
use vaani_testbench::{
    OPERATOR_KEY, PostgresDatabase, ServerSpec, Sipp, VaaniServer, can_send_dtmf, free_port,
};

const NUMBER: &str = "+918000000600";
const CALLER: &str = "+919800000001";

fn ok(server: &VaaniServer, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
    let (status, answer) = server.api_request(method, path, key, body.as_ref());
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

#[test]
fn a_tenant_made_over_the_api_takes_calls_gets_webhooks_and_reads_them_on_postgresql() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
    let db = PostgresDatabase::create();
    let mut spec = ServerSpec::demo();
    spec.store_url = Some(db.url().to_owned());
    spec.extra_toml = "[webhooks]\nallow_private = true\nallow_plain_http = true\n".to_owned();
    let mut server = VaaniServer::start(&spec);

    // The operator creates the tenant and its first key.
    ok(
        &server,
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(json!({ "id": "acme", "name": "Acme Clinic",
                     "settings": { "fallback_text": "Acme cannot take your call now." } })),
    );
    let key = ok(
        &server,
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(json!({ "tenant": "acme", "name": "acme backend" })),
    )["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();

    // The tenant, with its own key: a number, a plugin, a webhook endpoint.
    ok(
        &server,
        "POST",
        "/api/v1/numbers",
        &key,
        Some(json!({ "number": NUMBER, "trunk": "local" })),
    );
    let (status, plugin) = server.upload_plugin(&key, "echo");
    assert_eq!(status, 201, "{plugin}");
    ok(
        &server,
        "POST",
        &format!(
            "/api/v1/plugins/{}/activate",
            plugin["id"].as_str().unwrap()
        ),
        &key,
        None,
    );
    let port = free_port();
    let receiver = WebhookReceiver::start(port);
    let secret = ok(
        &server,
        "POST",
        "/api/v1/webhooks",
        &key,
        Some(json!({ "url": format!("http://127.0.0.1:{port}/hook") })),
    )["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_owned();

    // A real call: the echo plugin reads back the digits and hangs up on #.
    Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("milliseconds=\"3000\"", "milliseconds=\"1500\"")
        .run(server.sip_addr(), NUMBER, Duration::from_secs(60))
        .assert_success();

    // Webhooks: the three events, signed with the tenant's secret.
    let posts = receiver.wait_for(Duration::from_secs(30), |posts| posts.len() >= 3);
    let types: Vec<&str> = posts
        .iter()
        .map(|p| p.headers["x-vaani-event"].as_str())
        .collect();
    assert_eq!(types, ["call.started", "call.ended", "call.analyzed"]);
    let mut call_id = String::new();
    for post in &posts {
        assert_eq!(
            post.headers["x-vaani-signature"],
            signature_of(&secret, &post.headers["x-vaani-timestamp"], &post.body)
        );
        let event: Value = serde_json::from_str(&post.body).unwrap();
        assert_eq!(event["tenant_id"], "acme");
        call_id = event["data"]["call_id"].as_str().unwrap().to_owned();
    }
    let ended: Value = serde_json::from_str(&posts[1].body).unwrap();
    assert_eq!(ended["data"]["status"], "completed", "{ended}");
    assert_eq!(ended["data"]["end_reason"], "plugin_hangup", "{ended}");

    // Everything about the call, read with the tenant's key.
    let check_call = |server: &VaaniServer| {
        let listed = ok(
            server,
            "GET",
            &format!("/api/v1/calls?dialled=%2B{}", &NUMBER[1..]),
            &key,
            None,
        );
        let calls = listed["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{listed}");
        assert_eq!(calls[0]["id"], call_id.as_str());
        let detail = ok(
            server,
            "GET",
            &format!("/api/v1/calls/{call_id}"),
            &key,
            None,
        );
        assert_eq!(detail["tenant_id"], "acme");
        assert_eq!(detail["status"], "completed");
        assert_eq!(detail["plugin_name"], "echo");
        assert_eq!(detail["dtmf"], "12#");
        let said: Vec<&str> = detail["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|line| line["text"].as_str())
            .collect();
        assert!(said.iter().any(|t| t.contains("You pressed 1")), "{said:?}");
        assert!(
            detail["media_stats"]["packets_received"]
                .as_u64()
                .unwrap_or(0)
                > 50,
            "{detail:#}"
        );
        assert!(detail["cost"].is_object(), "{detail:#}");
        assert!(detail["latency"].is_object(), "{detail:#}");
        let caller = ok(
            server,
            "GET",
            &format!("/api/v1/callers/%2B{}", &CALLER[1..]),
            &key,
            None,
        );
        assert_eq!(caller["call_count"], 1, "{caller}");
        let analytics = ok(server, "GET", "/api/v1/analytics", &key, None);
        assert_eq!(analytics["calls"], 1, "{analytics}");
        assert_eq!(analytics["completed"], 1, "{analytics}");
    };
    check_call(&server);
    let deliveries = wait_delivered(&server, &key, 3);
    assert!(
        deliveries.iter().all(|d| d["attempts"] == 1),
        "{deliveries:#?}"
    );

    // Another tenant's key sees none of it.
    ok(
        &server,
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(json!({ "id": "other", "name": "Other" })),
    );
    let other = ok(
        &server,
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(json!({ "tenant": "other", "name": "other" })),
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server.api_request("GET", &format!("/api/v1/calls/{call_id}"), &other, None);
    assert_eq!(status, 404);
    let listed = ok(&server, "GET", "/api/v1/calls", &other, None);
    assert_eq!(listed["calls"], json!([]));

    // Killed and restarted on the same database: nothing lost, the tenant still takes calls.
    server.kill();
    server.restart();
    check_call(&server);
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), NUMBER, Duration::from_secs(60))
        .assert_success();
    wait_delivered(&server, &key, 6);
}

/// Waits until the tenant's delivery log shows at least `count` deliveries, all delivered.
fn wait_delivered(server: &VaaniServer, key: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = ok(server, "GET", "/api/v1/webhooks/deliveries", key, None);
        let deliveries = log["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() >= count && deliveries.iter().all(|d| d["status"] == "delivered") {
            return deliveries;
        }
        assert!(Instant::now() < deadline, "deliveries: {deliveries:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
