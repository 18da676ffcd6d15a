//! Trunks over the API against the real binary: the operator adds a plain trunk for a
//! provider's network, a tenant claims a number on it, calls from that network to the number
//! are admitted and calls from elsewhere are refused; changing or deleting the trunk applies to
//! the next call; the config file's trunks cannot be changed over the API.

use std::time::Duration;

use serde_json::{Value, json};
use vaani_testbench::{OPERATOR_KEY, ServerSpec, Sipp, VaaniServer};

const NUMBER: &str = "+918000000700";
/// The provider's network: a loopback address the config trunk (127.0.0.1/32) does not admit.
const PROVIDER: &str = "127.0.0.7";

fn request(
    server: &VaaniServer,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.api_request(method, path, key, body.as_ref())
}

/// A short call from `source` to [`NUMBER`] that must be answered.
fn answered_from(server: &VaaniServer, source: &str) {
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"500\"")
        .local_ip(source)
        .run(server.sip_addr(), NUMBER, Duration::from_secs(30))
        .assert_success();
}

/// A call from `source` to [`NUMBER`] that must be refused with `status`.
fn refused_from(server: &VaaniServer, source: &str, status: u16) {
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", format!("response=\"{status}\""))
        .local_ip(source)
        .run(server.sip_addr(), NUMBER, Duration::from_secs(30))
        .assert_success();
}

#[test]
fn an_api_trunk_admits_its_network_to_the_numbers_on_it() {
    let server = VaaniServer::start(&ServerSpec::demo());

    // A tenant with a key; the trunk list it sees has ids and names only.
    let (status, _) = request(
        &server,
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(json!({ "id": "acme", "name": "Acme" })),
    );
    assert_eq!(status, 201);
    let (_, created) = request(
        &server,
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(json!({ "tenant": "acme", "name": "acme" })),
    );
    let key = created["key"].as_str().unwrap().to_owned();

    // Validation, and the operator-only rule (a tenant key finds no such endpoint).
    for (body, code) in [
        (
            json!({ "name": "P", "allowed_cidrs": ["not-a-net"] }),
            "invalid_networks",
        ),
        (
            json!({ "name": "P", "allowed_cidrs": [] }),
            "invalid_networks",
        ),
        (
            json!({ "name": " ", "allowed_cidrs": ["127.0.0.7"] }),
            "invalid_name",
        ),
    ] {
        let (status, answer) = request(
            &server,
            "PUT",
            "/api/v1/trunks/provider",
            OPERATOR_KEY,
            Some(body),
        );
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{answer}"
        );
    }
    let (status, answer) = request(
        &server,
        "PUT",
        "/api/v1/trunks/Bad!",
        OPERATOR_KEY,
        Some(json!({ "name": "P", "allowed_cidrs": ["127.0.0.7"] })),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_trunk_id"))
    );
    let (status, answer) = request(
        &server,
        "PUT",
        "/api/v1/trunks/provider",
        &key,
        Some(json!({ "name": "P", "allowed_cidrs": ["0.0.0.0/0"] })),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // Also with a body the operator would get 400 for: nothing tells a tenant the route exists.
    let (status, answer) = request(
        &server,
        "PUT",
        "/api/v1/trunks/provider",
        &key,
        Some(json!({ "bogus": true })),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, answer) = request(
        &server,
        "PUT",
        "/api/v1/trunks/local",
        OPERATOR_KEY,
        Some(json!({ "name": "Open", "allowed_cidrs": ["0.0.0.0/0"] })),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("config_trunk"))
    );
    let (status, answer) = request(
        &server,
        "DELETE",
        "/api/v1/trunks/local",
        OPERATOR_KEY,
        None,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("config_trunk"))
    );

    // The operator adds the provider's trunk; the tenant claims a number on it.
    let (status, trunk) = request(
        &server,
        "PUT",
        "/api/v1/trunks/provider",
        OPERATOR_KEY,
        Some(json!({ "name": "Provider", "allowed_cidrs": [PROVIDER] })),
    );
    assert_eq!(status, 201, "{trunk}");
    assert_eq!(trunk["allowed_cidrs"], json!(["127.0.0.7/32"]));
    let (_, seen) = request(&server, "GET", "/api/v1/trunks", &key, None);
    assert!(
        seen["trunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("allowed_cidrs").is_none()),
        "a tenant key does not see the operator's networks: {seen}"
    );
    assert!(
        seen["trunks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "provider")
    );
    let (_, all) = request(&server, "GET", "/api/v1/trunks", OPERATOR_KEY, None);
    let sources: Vec<(String, String)> = all["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("local".to_owned(), "config".to_owned()),
            ("provider".to_owned(), "api".to_owned())
        ]
    );
    let (status, body) = request(
        &server,
        "POST",
        "/api/v1/numbers",
        &key,
        Some(json!({ "number": NUMBER, "trunk": "provider" })),
    );
    assert_eq!(status, 201, "{body}");

    // The tenant's plugin (a tenant without one only announces its fallback, unanswered).
    let (status, plugin) = server.upload_plugin(&key, "echo");
    assert_eq!(status, 201, "{plugin}");
    let (status, _) = request(
        &server,
        "POST",
        &format!(
            "/api/v1/plugins/{}/activate",
            plugin["id"].as_str().unwrap()
        ),
        &key,
        None,
    );
    assert_eq!(status, 200);

    // From the provider's network: answered.
    answered_from(&server, PROVIDER);
    // From the config trunk's network: not this number's trunk.
    refused_from(&server, "127.0.0.1", 403);

    // The operator moves the trunk to another network: the next call from the old one is
    // refused, and from the new one answered.
    let (status, _) = request(
        &server,
        "PUT",
        "/api/v1/trunks/provider",
        OPERATOR_KEY,
        Some(json!({ "name": "Provider", "allowed_cidrs": ["127.0.0.8/32"] })),
    );
    assert_eq!(status, 200);
    refused_from(&server, PROVIDER, 403);
    answered_from(&server, "127.0.0.8");

    // Deleted: the number routes over the tenant's trunk (the config file's first).
    let (status, _) = request(
        &server,
        "DELETE",
        "/api/v1/trunks/provider",
        OPERATOR_KEY,
        None,
    );
    assert_eq!(status, 204);
    let (status, answer) = request(
        &server,
        "DELETE",
        "/api/v1/trunks/provider",
        OPERATOR_KEY,
        None,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("trunk_not_found"))
    );
    refused_from(&server, "127.0.0.8", 403);
    answered_from(&server, "127.0.0.1");
}
