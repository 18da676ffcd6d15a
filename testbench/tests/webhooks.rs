//! Webhooks against the real server: a tenant registers endpoints over the API, a real call
//! produces `call.started`, `call.ended` and `call.analyzed`, each POSTed with a signature
//! the receiver can verify; a receiver outage is retried, and pending deliveries survive a
//! kill -9 and restart of the server. Each runs on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaani_testbench::webhook_receiver::{Received, WebhookReceiver as Receiver, signature_of};
use vaani_testbench::{OPERATOR_KEY, PostgresDatabase, ServerSpec, Sipp, VaaniServer, free_port};

/// A server whose webhooks may reach plain-http loopback receivers, retrying quickly; on
/// `postgres` when given, else on SQLite.
fn server(postgres: Option<&PostgresDatabase>) -> VaaniServer {
    let mut spec = ServerSpec::demo();
    spec.store_url = postgres.map(|db| db.url().to_owned());
    spec.extra_toml = "[webhooks]\nallow_private = true\nallow_plain_http = true\n\
                       initial_backoff_ms = 200\nmax_backoff_secs = 1\n"
        .to_owned();
    VaaniServer::start(&spec)
}

/// Registers an endpoint for tenant `echo`; returns (id, secret).
fn register(server: &VaaniServer, port: u16, events: &[&str]) -> (String, String) {
    let (status, created) = server.api_request(
        "POST",
        "/api/v1/webhooks",
        OPERATOR_KEY,
        Some(&json!({
            "tenant": "echo",
            "url": format!("http://127.0.0.1:{port}/hook"),
            "events": events,
        })),
    );
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// One short call to the echo tenant (the caller hangs up after a second).
fn call(server: &VaaniServer) {
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(30))
        .assert_success();
}

/// Checks the signature headers of `post` with `secret`.
fn assert_signed(post: &Received, secret: &str) {
    let timestamp = &post.headers["x-vaani-timestamp"];
    let sent: i64 = timestamp.parse().expect("a unix-seconds timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - sent).abs() < 120, "timestamp {sent} vs now {now}");
    assert_eq!(
        post.headers["x-vaani-signature"],
        signature_of(secret, timestamp, &post.body),
        "signature of {post:?}"
    );
    // The same check fails for another secret.
    assert_ne!(
        post.headers["x-vaani-signature"],
        signature_of("not-the-secret", timestamp, &post.body)
    );
}

fn body(post: &Received) -> Value {
    serde_json::from_str(&post.body).expect("a JSON body")
}

fn types(posts: &[Received]) -> Vec<String> {
    posts
        .iter()
        .map(|p| p.headers["x-vaani-event"].clone())
        .collect()
}

fn deliveries(server: &VaaniServer) -> Vec<Value> {
    let log = server.api_json("/api/v1/webhooks/deliveries?tenant=echo");
    log["deliveries"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_call_sends_signed_started_ended_and_analyzed_events() {
    signed_events(None);
}

#[test]
fn on_postgresql_a_call_sends_signed_started_ended_and_analyzed_events() {
    let db = PostgresDatabase::create();
    signed_events(Some(&db));
}

fn signed_events(postgres: Option<&PostgresDatabase>) {
    let server = server(postgres);
    let port = free_port();
    let receiver = Receiver::start(port);
    let (_, secret) = register(&server, port, &[]);
    let ended_port = free_port();
    let ended_receiver = Receiver::start(ended_port);
    let (_, ended_secret) = register(&server, ended_port, &["call.ended"]);

    // Secrets are shown once: the list does not carry them.
    let listed = server.api_json("/api/v1/webhooks?tenant=echo");
    let listed = listed["webhooks"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|w| w.get("secret").is_none()),
        "{listed:?}"
    );
    assert!(
        !server.log().contains(&secret),
        "the secret reached the log"
    );

    call(&server);
    let posts = receiver.wait_for(Duration::from_secs(30), |posts| posts.len() >= 3);
    assert_eq!(
        types(&posts),
        ["call.started", "call.ended", "call.analyzed"],
        "in the order they happened"
    );
    let call_id = body(&posts[0])["data"]["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for post in &posts {
        assert_signed(post, &secret);
        assert_eq!(post.headers["content-type"], "application/json");
        let event = body(post);
        assert_eq!(event["tenant_id"], "echo");
        assert_eq!(event["type"], post.headers["x-vaani-event"].as_str());
        assert_eq!(event["data"]["call_id"], call_id.as_str());
        assert!(
            post.headers["x-vaani-delivery"].starts_with(event["id"].as_str().unwrap()),
            "{post:?}"
        );
    }
    let started = body(&posts[0]);
    assert_eq!(started["data"]["dialled"], "+918000000099");
    assert_eq!(started["data"]["direction"], "inbound");
    let ended = body(&posts[1]);
    assert_eq!(ended["data"]["status"], "completed");
    assert_eq!(ended["data"]["end_reason"], "caller_hangup");
    assert!(
        ended["data"]["duration_ms"].as_i64().unwrap() > 500,
        "{ended}"
    );
    let analyzed = body(&posts[2]);
    assert!(analyzed["data"]["extractions"].is_array(), "{analyzed}");

    // The call.ended-only endpoint gets that one event, with its own signature.
    ended_receiver.wait_for(Duration::from_secs(30), |posts| !posts.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let ended_posts = ended_receiver.received();
    assert_eq!(types(&ended_posts), ["call.ended"]);
    assert_signed(&ended_posts[0], &ended_secret);

    let log = server.wait_for_deliveries(|log| {
        log.len() == 4 && log.iter().all(|d| d["status"] == "delivered")
    });
    assert!(log.iter().all(|d| d["attempts"] == 1), "{log:#?}");
}

#[test]
fn an_outage_is_retried_and_pending_deliveries_survive_a_crash() {
    outage_and_crash(None);
}

#[test]
fn on_postgresql_an_outage_is_retried_and_pending_deliveries_survive_a_crash() {
    let db = PostgresDatabase::create();
    outage_and_crash(Some(&db));
}

fn outage_and_crash(postgres: Option<&PostgresDatabase>) {
    let mut server = server(postgres);
    let port = free_port(); // nothing listens there yet: connections are refused
    register(&server, port, &["call.started", "call.ended"]);
    call(&server);

    // The first event's delivery fails and is retried; the endpoint's later event waits
    // behind it (an endpoint gets its events in order).
    let event_type = |d: &Value| d["event_type"].as_str().unwrap_or_default().to_owned();
    server.wait_for_deliveries(|log| {
        log.len() == 2
            && log.iter().all(|d| d["status"] == "pending")
            && log.iter().any(|d| {
                event_type(d) == "call.started"
                    && d["attempts"].as_i64().unwrap_or(0) >= 2
                    && d["last_error"].is_string()
            })
            && log
                .iter()
                .any(|d| event_type(d) == "call.ended" && d["attempts"] == 0)
    });

    // The server dies; the receiver comes back; the restarted server delivers, in order.
    server.kill();
    let receiver = Receiver::start(port);
    server.restart();
    let posts = receiver.wait_for(Duration::from_secs(30), |posts| posts.len() >= 2);
    assert_eq!(types(&posts), ["call.started", "call.ended"]);
    let log = server.wait_for_deliveries(|log| {
        log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")
    });
    let attempts = |kind: &str| {
        log.iter()
            .find(|d| event_type(d) == kind)
            .and_then(|d| d["attempts"].as_i64())
            .unwrap_or(0)
    };
    assert!(
        attempts("call.started") >= 3,
        "retried before the crash and delivered after: {log:#?}"
    );
    assert_eq!(attempts("call.ended"), 1, "{log:#?}");
}

/// Waiting on the delivery log.
trait DeliveryLog {
    fn wait_for_deliveries(&self, accept: impl Fn(&[Value]) -> bool) -> Vec<Value>;
}

impl DeliveryLog for VaaniServer {
    fn wait_for_deliveries(&self, accept: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = deliveries(self);
            if accept(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "delivery log never matched: {log:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
