//! Conversation tests against the SDK mock host, with the menu shipped in
//! `config/vaani.toml`.

use super::*;
use vaani_plugin_sdk::testing::{MockAction, TestCall};

/// The restaurant tenant's `plugin_config` from the shipped `config/vaani.toml`, as JSON.
fn shipped_config() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/vaani.toml");
    let text = std::fs::read_to_string(path).expect("read config/vaani.toml");
    let config: toml::Value = toml::from_str(&text).expect("config/vaani.toml is TOML");
    let tenant = config["tenants"]
        .as_array()
        .and_then(|tenants| {
            tenants
                .iter()
                .find(|t| t["id"].as_str() == Some("restaurant"))
        })
        .expect("a restaurant tenant in config/vaani.toml");
    serde_json::to_string(&tenant["plugin_config"]).expect("plugin_config as JSON")
}

fn context() -> CallerContext {
    CallerContext {
        dialled: "+918000000002".into(),
        config_json: shipped_config(),
        ..TestCall::<Restaurant>::default_context()
    }
}

/// A call from a new caller to Spice Garden.
fn new_call() -> TestCall<Restaurant> {
    let mut call = TestCall::<Restaurant>::new();
    call.start_with(context()).unwrap();
    call
}

/// Says `text` and returns the plugin's answer (the last thing it said).
fn say(call: &mut TestCall<Restaurant>, text: &str) -> String {
    call.transcript(text).unwrap();
    call.last_said().unwrap_or_default()
}

fn placed(call: &TestCall<Restaurant>) -> Value {
    let orders: Vec<Value> = call
        .extractions()
        .into_iter()
        .filter(|(id, _)| id == ORDER_SCHEMA)
        .map(|(_, data)| data)
        .collect();
    assert_eq!(orders.len(), 1, "one order: {orders:?}");
    orders[0].clone()
}

/// (item id, quantity, customizations) of each ordered line.
fn lines(order: &Value) -> Vec<(String, u64, Vec<String>)> {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item_id"].as_str().unwrap().to_string(),
                i["quantity"].as_u64().unwrap(),
                i["customizations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn line(id: &str, quantity: u64, customizations: &[&str]) -> (String, u64, Vec<String>) {
    (
        id.to_string(),
        quantity,
        customizations.iter().map(|c| c.to_string()).collect(),
    )
}

fn caller_names(call: &TestCall<Restaurant>) -> Vec<String> {
    call.actions()
        .iter()
        .filter_map(|a| match a {
            MockAction::SetCallerName(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// Validates `data` against the declared `order` schema, as the host does.
fn schema_errors(data: &Value) -> Vec<String> {
    let schema = Restaurant::schemas()
        .into_iter()
        .find(|s| s.id == ORDER_SCHEMA)
        .expect("order schema");
    let validator = jsonschema::validator_for(&schema.json_schema).expect("a valid JSON Schema");
    validator.iter_errors(data).map(|e| e.to_string()).collect()
}

const GREETING: &str = "Welcome to Spice Garden. Press 0 at any time to hear the menu. \
What would you like to order?";

#[test]
fn shipped_menu_parses() {
    let menu = Menu::from_config_json(&shipped_config()).unwrap();
    assert_eq!(menu.restaurant_name, "Spice Garden");
    assert_eq!(menu.items.len(), 12);
    assert_eq!(menu.delivery_minutes, 45);
    let curry = &menu.items[menu.item_by_id("chicken_curry").unwrap()];
    assert_eq!(curry.price_inr, 220);
    assert!(!curry.veg);
    assert_eq!(
        curry.customization("spicy").unwrap().group.as_deref(),
        Some("spice")
    );
    assert_eq!(
        menu.items[menu.item_by_id("fried_rice").unwrap()].spoken(2),
        "two veg fried rice"
    );
    assert_eq!(curry.spoken(3), "three chicken curries");
    assert_eq!(menu::plural_of("sandwich"), "sandwiches");
    assert_eq!(menu::plural_of("chai"), "chais");
    assert_eq!(menu::plural_of("samosas"), "samosas");
}

#[test]
fn greets_a_new_caller_and_asks_for_the_order() {
    let call = new_call();
    assert_eq!(call.said(), vec![GREETING]);
    assert!(!call.hung_up());
}

#[test]
fn takes_a_delivery_order_from_start_to_finish() {
    let mut call = new_call();
    assert_eq!(
        say(
            &mut call,
            "I would like one chicken curry, mild, and two filter coffees."
        ),
        "Added one chicken curry, mild and two filter coffees. Anything else?"
    );
    assert_eq!(
        say(&mut call, "No sugar in the coffee."),
        "Okay, two filter coffees, no sugar. Anything else?"
    );
    assert_eq!(
        say(&mut call, "That's all, thank you."),
        FULFILMENT_QUESTION
    );
    assert_eq!(
        say(&mut call, "I would like home delivery."),
        ADDRESS_QUESTION
    );
    assert_eq!(
        say(&mut call, "Number 12, Church Street, Bangalore."),
        NAME_QUESTION
    );
    assert_eq!(
        say(&mut call, "My name is Priya."),
        "That's one chicken curry, mild and two filter coffees, no sugar, for delivery to \
         Number 12, Church Street, Bangalore, in the name of Priya. The total is 320 rupees. \
         Shall I place the order?"
    );
    assert!(!call.hung_up());
    assert_eq!(
        say(&mut call, "Yes, that's right."),
        "Thank you, Priya. Your order is placed. It will be delivered in about 45 minutes. Goodbye."
    );
    assert!(call.hung_up());
    assert_eq!(caller_names(&call), ["Priya"]);

    let order = placed(&call);
    assert_eq!(
        order,
        json!({
            "items": [
                { "item_id": "chicken_curry", "name": "chicken curry", "quantity": 1,
                  "unit_price_inr": 220, "veg": false, "customizations": ["mild"] },
                { "item_id": "filter_coffee", "name": "filter coffee", "quantity": 2,
                  "unit_price_inr": 50, "veg": true, "customizations": ["no sugar"] }
            ],
            "fulfilment": "delivery",
            "address": "Number 12, Church Street, Bangalore",
            "customer_name": "Priya",
            "caller": "+919800000001",
            "total_inr": 320,
            "currency": "INR"
        })
    );
    assert_eq!(schema_errors(&order), Vec::<String>::new());
    let memory = call.memory().expect("caller memory");
    assert_eq!(
        memory["last_order"]["summary"],
        "one chicken curry, mild and two filter coffees, no sugar"
    );
    assert_eq!(
        memory["last_order"]["address"],
        "Number 12, Church Street, Bangalore"
    );
}

#[test]
fn understands_what_whisper_makes_of_espeak() {
    // Transcripts whisper tiny.en produced from espeak-ng over G.711 in vaani.
    let mut call = new_call();
    say(
        &mut call,
        "I was like one chicken curry, mild and two-filter coffee.",
    );
    // A repetition loop, and the start of the next answer lost.
    say(&mut call, "Thank you.");
    assert_eq!(call.last_said().as_deref(), Some(FULFILMENT_QUESTION));
    say(&mut call, "Can you deliver me to my home?");
    say(&mut call, "Number 12 Church Street Bangalore");
    say(
        &mut call,
        "My name is Priya My name is Priya My name is Priya My name is Pri",
    );
    say(&mut call, "Yes, now try it.");
    let order = placed(&call);
    assert_eq!(
        lines(&order),
        [
            line("chicken_curry", 1, &["mild"]),
            line("filter_coffee", 2, &[])
        ]
    );
    assert_eq!(order["customer_name"], "Priya");
    assert_eq!(order["address"], "Number 12 Church Street Bangalore");
}

#[test]
fn matches_near_spellings_numbers_and_plurals() {
    let mut call = new_call();
    say(
        &mut call,
        "I would like one chicken virani and 2 mango lassies.",
    );
    say(&mut call, "And to pane tikkas, please.");
    say(
        &mut call,
        "Also a couple of garlic naans and three tomato soups.",
    );
    say(&mut call, "One fried rice and two chocolate-ite creams.");
    say(&mut call, "Nothing else.");
    say(&mut call, "I will come and collect it.");
    say(&mut call, "Ravi.");
    say(&mut call, "Yes.");
    let order = placed(&call);
    assert_eq!(
        lines(&order),
        [
            line("chicken_biryani", 1, &[]),
            line("mango_lassi", 2, &[]),
            line("paneer_tikka", 2, &[]),
            line("garlic_naan", 2, &[]),
            line("tomato_soup", 3, &[]),
            line("fried_rice", 1, &[]),
            line("chocolate_ice_cream", 2, &[]),
        ]
    );
    assert_eq!(order["fulfilment"], "pickup");
    assert!(order.get("address").is_none());
    assert_eq!(order["total_inr"], 250 + 180 + 400 + 120 + 330 + 160 + 200);
    assert_eq!(schema_errors(&order), Vec::<String>::new());
}

#[test]
fn customizations_go_to_the_right_item() {
    let mut call = new_call();
    assert_eq!(
        say(
            &mut call,
            "Two masala dosas without onion and one spicy paneer tikka."
        ),
        "Added two masala dosas, no onion and one paneer tikka, spicy. Anything else?"
    );
    say(&mut call, "And a chicken biryani.");
    assert_eq!(
        say(&mut call, "Make it mild."),
        "Okay, one chicken biryani, mild. Anything else?"
    );
    assert_eq!(
        say(&mut call, "Make it two."),
        "Okay, two chicken biryanis, mild. Anything else?"
    );
    // The spice levels exclude each other.
    say(&mut call, "Actually make the biryani very spicy.");
    // A filter coffee cannot be made spicy: the latest dish that can is.
    say(&mut call, "One coffee.");
    say(&mut call, "Make it mild.");
    say(&mut call, "That's all.");
    say(&mut call, "Pickup.");
    say(&mut call, "Asha.");
    say(&mut call, "Yes.");
    assert_eq!(
        lines(&placed(&call)),
        [
            line("masala_dosa", 2, &["no onion"]),
            line("paneer_tikka", 1, &["spicy"]),
            line("chicken_biryani", 2, &["mild"]),
            line("filter_coffee", 1, &[]),
        ]
    );
}

#[test]
fn corrections_at_the_read_back() {
    let mut call = new_call();
    say(
        &mut call,
        "Two chicken curries and one mango lassi and a coffee.",
    );
    say(&mut call, "That's it.");
    say(&mut call, "Delivery.");
    say(&mut call, "12 MG Road, Bangalore.");
    let read_back = say(&mut call, "Priya.");
    assert!(read_back.starts_with("That's two chicken curries, one mango lassi and one filter coffee, for delivery to 12 MG Road, Bangalore, in the name of Priya. The total is 580 rupees."), "{read_back}");

    let read_back = say(&mut call, "No, remove the mango lassi.");
    assert!(
        read_back.starts_with("Okay. That's two chicken curries and one filter coffee,"),
        "{read_back}"
    );
    let read_back = say(&mut call, "No, make it three chicken curries.");
    assert!(
        read_back.starts_with("Okay. That's three chicken curries and one filter coffee,"),
        "{read_back}"
    );
    assert_eq!(say(&mut call, "No."), CHANGE_QUESTION);
    let read_back = say(&mut call, "Pickup instead.");
    assert!(
        read_back
            .contains("filter coffee, for pickup, in the name of Priya. The total is 710 rupees."),
        "{read_back}"
    );
    let read_back = say(&mut call, "No, remove one chicken curry.");
    assert!(
        read_back.starts_with("Okay. That's two chicken curries and one filter coffee"),
        "{read_back}"
    );
    say(&mut call, "Yes, please place the order.");
    let order = placed(&call);
    assert_eq!(
        lines(&order),
        [line("chicken_curry", 2, &[]), line("filter_coffee", 1, &[])]
    );
    assert_eq!(order["fulfilment"], "pickup");
    assert!(order.get("address").is_none());
    assert_eq!(order["total_inr"], 490);
    assert_eq!(
        call.last_said().as_deref(),
        Some(
            "Thank you, Priya. Your order is placed. It will be ready for pickup in about 20 minutes. Goodbye."
        )
    );
}

#[test]
fn switching_to_delivery_at_the_read_back_asks_for_the_address() {
    let mut call = new_call();
    say(&mut call, "One masala dosa, that's all.");
    say(&mut call, "Pickup.");
    say(&mut call, "Priya.");
    assert_eq!(
        say(&mut call, "No, delivery please."),
        "Okay. What is the delivery address?"
    );
    let read_back = say(&mut call, "7 Park Street.");
    assert!(
        read_back.contains("for delivery to 7 Park Street"),
        "{read_back}"
    );
    say(&mut call, "Yes.");
    assert_eq!(placed(&call)["address"], "7 Park Street");
}

#[test]
fn an_address_for_an_answer_means_delivery() {
    let mut call = new_call();
    say(&mut call, "One masala dosa.");
    say(&mut call, "That's all.");
    assert_eq!(say(&mut call, "Number 9, Hill Road."), NAME_QUESTION);
    say(&mut call, "Ravi.");
    say(&mut call, "Yes.");
    let order = placed(&call);
    assert_eq!(order["fulfilment"], "delivery");
    assert_eq!(order["address"], "Number 9, Hill Road");
}

#[test]
fn a_name_is_not_taken_for_the_address() {
    let mut call = new_call();
    say(&mut call, "One masala dosa. That's all.");
    say(&mut call, "Delivery.");
    assert_eq!(say(&mut call, "My name is Priya."), ADDRESS_QUESTION);
    assert_eq!(
        say(&mut call, "5 Park Street."),
        call.plugin().read_back().unwrap()
    );
    assert!(
        call.last_said()
            .unwrap()
            .contains("for delivery to 5 Park Street, in the name of Priya")
    );
}

#[test]
fn everyday_words_are_not_dishes() {
    let mut call = new_call();
    assert_eq!(
        say(&mut call, "Sorry, I will carry it."),
        format!("{NOT_UNDERSTOOD} {ORDER_QUESTION}")
    );
}

#[test]
fn unknown_items_get_the_menu() {
    let mut call = new_call();
    let answer = say(&mut call, "I would like a pizza, please.");
    assert_eq!(
        answer,
        "Sorry, we don't have pizza. We have chicken biryani, chicken curry, paneer tikka, \
         masala dosa, veg fried rice, garlic naan, tomato soup, mango lassi, masala chai, \
         filter coffee, chocolate ice cream and gulab jamun. What would you like to order?"
    );
    assert_eq!(
        say(&mut call, "Hmm."),
        format!("{NOT_UNDERSTOOD} {ORDER_QUESTION}")
    );
    assert!(
        say(&mut call, "Blah blah.")
            .starts_with("Sorry, I didn't catch that. We have chicken biryani,"),
        "the second miss in a row lists the menu"
    );
    assert_eq!(
        say(&mut call, "That's all."),
        format!("{NOTHING_ORDERED} {ORDER_QUESTION}")
    );
    assert!(
        say(&mut call, "What's on the menu?")
            .starts_with("We have chicken biryani 250 rupees, chicken curry 220 rupees,")
    );
    assert!(call.extractions().is_empty());
    assert!(!call.hung_up());
}

#[test]
fn large_counts_are_capped() {
    let mut call = new_call();
    assert_eq!(
        say(&mut call, "100 samosas and 60 gulab jamuns."),
        "Added 50 gulab jamuns. Anything else?",
        "samosas are not on this menu; 60 is capped at 50"
    );
}

#[test]
fn bad_configuration_apologises_and_hangs_up() {
    for (config, expected_error) in [
        ("{}", "plugin configuration has no menu items"),
        ("not json", "plugin configuration is not valid"),
        (r#"{"menu": []}"#, "plugin configuration has no menu items"),
        (
            r#"{"menu": [{"id": "a", "name": "tea", "price_inr": 0, "veg": true}]}"#,
            "menu[0]: `price_inr` must be 1 to 100000",
        ),
        (
            r#"{"menu": [{"id": "a", "name": "tea", "price_inr": 10, "veg": true},
                         {"id": "a", "name": "coffee", "price_inr": 10, "veg": true}]}"#,
            "menu item id `a` is used twice",
        ),
        (
            r#"{"menu": [{"id": "a", "name": "tea", "price_inr": 10}]}"#,
            "missing field `veg`",
        ),
        (
            r#"{"menu": [{"id": "a", "name": "tea", "price_inr": 10, "veg": true, "colour": "red"}]}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"menu": [{"id": " ", "name": "tea", "price_inr": 10, "veg": true}]}"#,
            "menu[0]: `id` is empty",
        ),
    ] {
        let mut call = TestCall::<Restaurant>::new();
        call.start_with(CallerContext {
            config_json: config.into(),
            ..TestCall::<Restaurant>::default_context()
        })
        .unwrap();
        assert_eq!(call.said(), vec![CONFIG_APOLOGY], "{config}");
        assert!(call.hung_up(), "{config}");
        let logs = call.logs();
        assert!(
            logs.iter()
                .any(|(level, message)| *level == LogLevel::Error
                    && message.contains(expected_error)),
            "{config}: {logs:?}"
        );
        // Nothing afterwards makes it talk again.
        call.transcript("One coffee.").unwrap();
        call.dtmf('0').unwrap();
        call.silence(8000).unwrap();
        assert_eq!(call.said().len(), 1, "{config}");
    }
}

fn returning_context(memory: Option<&str>) -> CallerContext {
    CallerContext {
        caller_name: Some("Priya".into()),
        memory_json: memory.map(str::to_string),
        previous_calls: 1,
        ..context()
    }
}

const LAST_ORDER: &str = r#"{"last_order": {
    "items": [
        {"item_id": "chicken_curry", "quantity": 1, "customizations": ["mild"]},
        {"item_id": "filter_coffee", "quantity": 2, "customizations": ["no sugar"]},
        {"item_id": "dropped_from_the_menu", "quantity": 1, "customizations": []}
    ],
    "summary": "…",
    "fulfilment": "delivery",
    "address": "Number 12, Church Street, Bangalore",
    "total_inr": 320
}}"#;

#[test]
fn greets_a_returning_caller_by_name() {
    let mut call = TestCall::<Restaurant>::new();
    call.start_with(returning_context(None)).unwrap();
    assert_eq!(
        call.said(),
        vec![
            "Welcome back to Spice Garden, Priya. Press 0 at any time to hear the menu. What would you like to order?"
        ]
    );
    // The name is known: no name question, and it is not saved again.
    say(&mut call, "One masala chai. That's all.");
    let read_back = say(&mut call, "Pickup.");
    assert!(
        read_back.starts_with("That's one masala chai, for pickup, in the name of Priya."),
        "{read_back}"
    );
    say(&mut call, "Yes.");
    assert_eq!(placed(&call)["customer_name"], "Priya");
    assert!(caller_names(&call).is_empty());
}

#[test]
fn offers_the_same_as_last_time() {
    let mut call = TestCall::<Restaurant>::new();
    call.start_with(returning_context(Some(LAST_ORDER)))
        .unwrap();
    assert_eq!(
        call.said(),
        vec![
            "Welcome back to Spice Garden, Priya. Press 0 at any time to hear the menu. Would you like the same as last time: one chicken curry, mild and two filter coffees, no sugar?"
        ]
    );
    assert_eq!(say(&mut call, "Yes, please."), "Great. Anything else?");
    say(&mut call, "Nothing else.");
    assert_eq!(
        say(&mut call, "Delivery."),
        "Shall we deliver to Number 12, Church Street, Bangalore again?"
    );
    let read_back = say(&mut call, "Yes.");
    assert!(read_back.contains("for delivery to Number 12, Church Street, Bangalore, in the name of Priya. The total is 320 rupees."), "{read_back}");
    say(&mut call, "Yes.");
    let order = placed(&call);
    assert_eq!(
        lines(&order),
        [
            line("chicken_curry", 1, &["mild"]),
            line("filter_coffee", 2, &["no sugar"])
        ]
    );
}

#[test]
fn a_returning_caller_may_order_something_else_and_a_new_address() {
    let mut call = TestCall::<Restaurant>::new();
    call.start_with(returning_context(Some(LAST_ORDER)))
        .unwrap();
    assert_eq!(
        say(&mut call, "No, I would like a tomato soup."),
        "Added one tomato soup. Anything else?"
    );
    say(&mut call, "That's all.");
    say(&mut call, "Delivery.");
    assert_eq!(say(&mut call, "No."), ADDRESS_QUESTION);
    say(&mut call, "5 Lake View Road.");
    say(&mut call, "Yes.");
    let order = placed(&call);
    assert_eq!(lines(&order), [line("tomato_soup", 1, &[])]);
    assert_eq!(order["address"], "5 Lake View Road");
}

#[test]
fn memory_it_cannot_use_is_ignored() {
    for memory in [
        "not json",
        r#"{"last_order": {"items": [{"item_id": "pizza", "quantity": 2}]}}"#,
        r#"{"last_order": {"items": "many"}}"#,
        r#"{"something": "else"}"#,
    ] {
        let mut call = TestCall::<Restaurant>::new();
        call.start_with(returning_context(Some(memory))).unwrap();
        assert!(
            call.said()[0].ends_with(ORDER_QUESTION),
            "{memory}: {:?}",
            call.said()
        );
    }
}

#[test]
fn silence_prompts_once_then_says_goodbye() {
    let mut call = new_call();
    call.silence(8000).unwrap();
    assert_eq!(
        call.last_said().as_deref(),
        Some("Are you still there? What would you like to order?")
    );
    // Speech in between resets the count.
    say(&mut call, "One coffee.");
    call.silence(8000).unwrap();
    assert_eq!(
        call.last_said().as_deref(),
        Some("Are you still there? Anything else?")
    );
    assert!(!call.hung_up());
    call.silence(8000).unwrap();
    assert_eq!(call.last_said().as_deref(), Some(SILENT_GOODBYE));
    assert!(call.hung_up());
    assert!(call.extractions().is_empty());
    let before = call.actions().len();
    call.silence(8000).unwrap();
    call.transcript("Hello?").unwrap();
    assert_eq!(call.actions().len(), before, "nothing after the goodbye");
}

#[test]
fn keys_read_the_menu_and_confirm() {
    let mut call = new_call();
    call.dtmf('0').unwrap();
    let menu = call.last_said().unwrap();
    assert!(
        menu.starts_with("We have chicken biryani 250 rupees, chicken curry 220 rupees,"),
        "{menu}"
    );
    assert!(
        menu.ends_with("gulab jamun 80 rupees. What would you like to order?"),
        "{menu}"
    );
    say(&mut call, "Two masala dosas.");
    call.dtmf('*').unwrap();
    assert_eq!(call.last_said().as_deref(), Some(MORE_QUESTION));
    say(&mut call, "That's all.");
    call.dtmf('2').unwrap(); // pickup
    say(&mut call, "Priya.");
    call.dtmf('1').unwrap();
    let order = placed(&call);
    assert_eq!(lines(&order), [line("masala_dosa", 2, &[])]);
    assert_eq!(order["fulfilment"], "pickup");
    assert!(call.hung_up());
}

#[test]
fn cancelling_ends_the_call_without_an_order() {
    let mut call = new_call();
    say(&mut call, "Two masala dosas.");
    assert_eq!(say(&mut call, "Actually, cancel the order."), CANCELLED);
    assert!(call.hung_up());
    assert!(call.extractions().is_empty());
    assert!(call.memory().is_none());
}

#[test]
fn a_name_said_in_passing_is_remembered() {
    let mut call = new_call();
    say(
        &mut call,
        "Hi, my name is Ravi, I would like one masala dosa.",
    );
    say(&mut call, "That's all.");
    let read_back = say(&mut call, "Pickup.");
    assert!(read_back.contains("in the name of Ravi"), "{read_back}");
    assert_eq!(caller_names(&call), ["Ravi"]);
}

#[test]
fn the_name_question_gives_up_after_two_misses() {
    let mut call = new_call();
    say(&mut call, "One masala dosa. That's all.");
    say(&mut call, "Pickup.");
    assert_eq!(
        say(&mut call, "Yes."),
        format!("{NOT_UNDERSTOOD} {NAME_QUESTION}")
    );
    let read_back = say(&mut call, "Okay.");
    assert!(
        read_back.starts_with("That's one masala dosa, for pickup. The total"),
        "{read_back}"
    );
    say(&mut call, "Yes.");
    let order = placed(&call);
    assert!(order.get("customer_name").is_none());
    assert_eq!(schema_errors(&order), Vec::<String>::new());
}

#[test]
fn the_schema_rejects_what_the_plugin_never_sends() {
    let good = json!({
        "items": [{ "item_id": "tea", "name": "tea", "quantity": 1, "unit_price_inr": 40,
                    "veg": true, "customizations": [] }],
        "fulfilment": "pickup", "caller": "+919800000001", "total_inr": 40, "currency": "INR"
    });
    assert_eq!(schema_errors(&good), Vec::<String>::new());
    let mut delivery_without_address = good.clone();
    delivery_without_address["fulfilment"] = json!("delivery");
    assert!(!schema_errors(&delivery_without_address).is_empty());
    let mut too_many = good.clone();
    too_many["items"][0]["quantity"] = json!(51);
    assert!(!schema_errors(&too_many).is_empty());
    let mut no_items = good.clone();
    no_items["items"] = json!([]);
    assert!(!schema_errors(&no_items).is_empty());
    let mut dollars = good;
    dollars["currency"] = json!("USD");
    assert!(!schema_errors(&dollars).is_empty());
}

#[test]
fn describes_itself() {
    let info = Restaurant::info();
    assert_eq!(info.name, "restaurant");
    assert_eq!(info.schemas.len(), 1);
    assert_eq!(info.schemas[0].id, ORDER_SCHEMA);
}

/// What `order::request` reads from `text`, as (item id, count, adding, removing,
/// customizations), plus loose customizations and an unknown dish.
#[allow(clippy::type_complexity)]
fn read(
    text: &str,
) -> (
    Vec<(String, Option<u32>, bool, bool, Vec<String>)>,
    Vec<String>,
    Option<String>,
) {
    let menu = Menu::from_config_json(&shipped_config()).unwrap();
    let request = order::request(&menu, &words::words(text));
    (
        request
            .items
            .iter()
            .map(|m| {
                (
                    menu.items[m.item].id.clone(),
                    m.quantity,
                    m.adding,
                    m.removing,
                    m.customizations.clone(),
                )
            })
            .collect(),
        request.loose_customizations,
        request.unknown,
    )
}

fn item(
    id: &str,
    count: Option<u32>,
    adding: bool,
    removing: bool,
    custom: &[&str],
) -> (String, Option<u32>, bool, bool, Vec<String>) {
    (
        id.to_string(),
        count,
        adding,
        removing,
        custom.iter().map(|c| c.to_string()).collect(),
    )
}

#[test]
fn reads_items_counts_and_customizations() {
    let (items, loose, unknown) =
        read("I would like two masala dosas without onion and one spicy paneer tikka.");
    assert_eq!(
        items,
        [
            item("masala_dosa", Some(2), false, false, &["no onion"]),
            item("paneer_tikka", Some(1), false, false, &["spicy"]),
        ]
    );
    assert!(loose.is_empty());
    assert_eq!(unknown, None);

    // whisper writes "two" as "to" before a dish now and then.
    assert_eq!(
        read("I would like to chicken curries.").0,
        [item("chicken_curry", Some(2), false, false, &[])]
    );
    assert_eq!(
        read("A couple of plates of garlic naan.").0,
        [item("garlic_naan", Some(2), false, false, &[])]
    );
    assert_eq!(
        read("Another coffee.").0,
        [item("filter_coffee", Some(1), true, false, &[])]
    );
    assert_eq!(
        read("Add one more lassi.").0,
        [item("mango_lassi", Some(1), true, false, &[])]
    );
    assert_eq!(
        read("One hot coffee").0,
        [item("filter_coffee", Some(1), false, false, &["spicy"])],
        "dropped later: coffee has no spice level"
    );
    assert_eq!(read("Make it spicy.").1, ["spicy"]);
    assert_eq!(read("With no sugar, please.").1, ["no sugar"]);
}

#[test]
fn reads_removals() {
    for text in [
        "Remove the mango lassi.",
        "No mango lassi.",
        "No, no lassi.",
        "Cancel the lassi.",
        "I don't want the lassi.",
        "Take the lassi off.",
        "Without the lassi.",
    ] {
        assert_eq!(
            read(text).0,
            [item("mango_lassi", None, false, true, &[])],
            "{text}"
        );
    }
    assert_eq!(
        read("Remove one lassi.").0,
        [item("mango_lassi", Some(1), false, true, &[])]
    );
    assert_eq!(
        read("Zero lassis.").0,
        [item("mango_lassi", Some(0), false, true, &[])]
    );
    // whisper dropped the comma: a count, not a removal.
    assert_eq!(
        read("No two lassis.").0,
        [item("mango_lassi", Some(2), false, false, &[])]
    );
    // "no onion" is a customization, not the removal of a dish.
    assert_eq!(
        read("Masala dosa with no onion.").0,
        [item("masala_dosa", None, false, false, &["no onion"])]
    );
}

#[test]
fn reads_dishes_that_are_not_on_the_menu() {
    assert_eq!(
        read("I would like a pizza, please.").2.as_deref(),
        Some("pizza")
    );
    assert_eq!(
        read("Two cheese burgers and").2.as_deref(),
        Some("cheese burgers")
    );
    assert_eq!(read("Give me a minute.").2, None);
    assert_eq!(read("Hello?").2, None);
    assert_eq!(
        read("One coffee.").2,
        None,
        "only when nothing on the menu was found"
    );
}
