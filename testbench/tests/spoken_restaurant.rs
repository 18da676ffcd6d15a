//! End to end: a caller orders food by voice from the restaurant line (the menu shipped in
//! `config/vaani.toml`), then calls again and is welcomed back by name with last time's order.
//! The caller's answers are espeak-ng speech in one audio file that sipp streams; vaani
//! transcribes them with whisper tiny.en and the restaurant plugin (rule-based) takes the order.
//!
//! whisper tiny.en hears espeak-ng badly on Indian dish names over G.711 ("masala dosa" came
//! back as "man, a lot of us"), so the caller orders dishes it hears reliably; the phrases below
//! came back right (or close enough for the plugin) in repeated trials.

use std::time::{Duration, Instant};

use serde_json::Value;
use vaani_media::g711::Law;
use vaani_testbench::audio::write_spoken_phrases;
use vaani_testbench::{ServerSpec, Sipp, TenantSpec, VaaniServer, repo_root};

/// The restaurant line's number in `config/vaani.toml`.
const RESTAURANT: &str = "+918000000002";

/// The caller's side: an answer to each question, with room for the agent's answer after it
/// (the plugin follows the answers in order, whatever the prompt timing). The read-back of the
/// order takes about 12 seconds.
const CALLER: &[(&str, f32)] = &[
    (
        "I would like one chicken curry, mild, and two filter coffees.",
        5.0,
    ),
    ("No sugar in the coffee.", 4.0),
    ("That's all, thank you.", 4.0),
    ("I would like home delivery.", 4.0),
    ("Number twelve, Church Street, Bangalore.", 4.0),
    ("My name is Priya.", 13.0),
    ("Yes, that's right.", 10.0),
];

/// The `[tenants.plugin_config]` tables (the menu) of the restaurant tenant in the shipped
/// `config/vaani.toml`, as TOML text to append to a test tenant.
fn shipped_restaurant_config() -> String {
    let text = std::fs::read_to_string(repo_root().join("config/vaani.toml"))
        .expect("read config/vaani.toml");
    let tenant = text
        .split("[[tenants]]")
        .find(|block| block.contains("id = \"restaurant\""))
        .expect("a restaurant tenant in config/vaani.toml");
    let start = tenant
        .find("[tenants.plugin_config]")
        .expect("the restaurant tenant has a [tenants.plugin_config] table");
    tenant[start..].to_string()
}

fn server_spec() -> ServerSpec {
    let mut spec = ServerSpec::demo();
    let mut restaurant = TenantSpec::new("restaurant", RESTAURANT, "restaurant");
    restaurant.extra = shipped_restaurant_config();
    spec.tenants.push(restaurant);
    spec
}

fn lines_of(detail: &Value, caller: bool) -> Vec<&str> {
    detail["transcript"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| (l["speaker"] == "caller") == caller)
        .filter_map(|l| l["text"].as_str())
        .collect()
}

fn extraction<'a>(detail: &'a Value, schema_id: &str) -> &'a Value {
    detail["extractions"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["schema_id"] == schema_id))
        .map(|e| &e["data"])
        .unwrap_or_else(|| panic!("no {schema_id} extraction: {detail:#}"))
}

/// (item id, quantity) of each ordered line.
fn ordered(order: &Value) -> Vec<(String, u64)> {
    order["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["item_id"].as_str().unwrap_or_default().to_string(),
                i["quantity"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn caller_orders_food_by_voice_and_is_welcomed_back() {
    let server = VaaniServer::start(&server_spec());

    // First call: the order. Waits for vaani's BYE (the scenario offers PCMU: u-law audio).
    let sipp = Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("caller_8k.ulaw,-1,0", "caller_spoken.ulaw,1,0")
        .substitute("<exec play_dtmf=\"12#\"/>", "")
        .substitute("timeout=\"60000\"", "timeout=\"120000\"");
    write_spoken_phrases(sipp.dir(), "caller_spoken.ulaw", Law::Mu, 1.5, CALLER);
    let started = Instant::now();
    sipp.run(server.sip_addr(), RESTAURANT, Duration::from_secs(150))
        .assert_success();
    eprintln!("the order call lasted {:?}", started.elapsed());

    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().any(|c| c["status"] == "completed")
    });
    let first_id = calls[0]["id"].as_str().expect("call id").to_string();
    let detail = server.api_json(&format!("/api/v1/calls/{first_id}"));
    let heard = lines_of(&detail, true);
    let agent = lines_of(&detail, false);
    for line in &heard {
        eprintln!("caller: {}", line.chars().take(100).collect::<String>());
    }
    for line in &agent {
        eprintln!("agent:  {line}");
    }
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    assert!(heard.len() >= CALLER.len(), "{heard:?}");

    let order = extraction(&detail, "order");
    assert_eq!(
        ordered(order),
        [
            ("chicken_curry".to_string(), 1),
            ("filter_coffee".to_string(), 2)
        ],
        "{order:#}"
    );
    assert_eq!(
        order["items"][0]["customizations"],
        serde_json::json!(["mild"]),
        "{order:#}"
    );
    assert_eq!(
        order["items"][1]["customizations"],
        serde_json::json!(["no sugar"]),
        "{order:#}"
    );
    assert_eq!(order["fulfilment"], "delivery", "{order:#}");
    assert_eq!(order["total_inr"], 320, "{order:#}");
    assert_eq!(order["currency"], "INR", "{order:#}");
    assert_eq!(order["customer_name"], "Priya", "{order:#}");
    let address = order["address"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        address.contains("12") && address.contains("church"),
        "{order:#}"
    );
    assert_eq!(
        agent.first().copied(),
        Some(
            "Welcome to Spice Garden. Press 0 at any time to hear the menu. What would you like to order?"
        )
    );
    assert!(
        agent.iter().any(|l| l.starts_with(
            "That's one chicken curry, mild and two filter coffees, no sugar, for delivery to"
        ) && l
            .ends_with("in the name of Priya. The total is 320 rupees. Shall I place the order?")),
        "{agent:?}"
    );
    assert_eq!(
        agent.last().copied(),
        Some(
            "Thank you, Priya. Your order is placed. It will be delivered in about 45 minutes. Goodbye."
        )
    );

    // Second call from the same number: a few seconds of line noise, then the caller hangs up.
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("+9198000[call_number]", "+919800000001")
        .substitute(
            "<pause milliseconds=\"5000\"/>",
            "<pause milliseconds=\"4000\"/>",
        );
    sipp.run(server.sip_addr(), RESTAURANT, Duration::from_secs(30))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().filter(|c| c["status"] == "completed").count() >= 2
    });
    let second = calls
        .iter()
        .find(|c| c["id"] != first_id.as_str())
        .expect("the second call");
    let detail = server.api_json(&format!(
        "/api/v1/calls/{}",
        second["id"].as_str().expect("call id")
    ));
    let agent = lines_of(&detail, false);
    let greeting = agent.first().copied().unwrap_or_default();
    assert!(
        greeting.starts_with("Welcome back to Spice Garden, Priya.")
            && greeting.ends_with("Would you like the same as last time: one chicken curry, mild and two filter coffees, no sugar?"),
        "{agent:?}"
    );
    assert_eq!(detail["end_reason"], "caller_hangup", "{detail:#}");
}
