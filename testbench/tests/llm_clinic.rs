//! End to end: the clinic plugin in LLM mode. The clinic tenant gets `[tenants.llm]` pointing at
//! a fake OpenAI-compatible server (`vaani_testbench::fake_llm`) that streams scripted replies in
//! OpenAI's wire format. The caller's answers are espeak-ng speech that sipp streams; vaani
//! transcribes them with whisper tiny.en, the plugin sends each caller turn to the model, vaani
//! speaks the streamed reply, and the model's `book_appointment` tool call becomes the
//! `appointment` extraction. When the model fails (HTTP 500) the plugin apologises and carries
//! on with its rule-based questions.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use vaani_media::g711::Law;
use vaani_testbench::audio::write_spoken_phrases;
use vaani_testbench::fake_llm::{FakeLlm, FakeReply, messages_with_role, tool_names};
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const CLINIC_NUMBER: &str = "+918000000001";
const FIRST_REPLY: &str = "Sure. May I have the patient's name?";
const CLOSING_REPLY: &str = "You're booked for tomorrow at ten. Goodbye.";

/// The caller's side, with room after each answer for the agent's reply.
const CALLER: &[(&str, f32)] = &[
    (
        "I would like to book an appointment for tomorrow at ten.",
        8.0,
    ),
    ("The patient is John Smith.", 14.0),
];

/// `YYYY-MM-DD` of the UTC day `offset_days` from now (the clinic's default time zone is UTC).
fn utc_date(offset_days: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // Howard Hinnant's civil_from_days.
    let z = secs.div_euclid(86_400) + offset_days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The clinic demo tenants, the clinic with `[tenants.llm]` at `base_url`.
fn spec_with_llm(base_url: &str) -> ServerSpec {
    let mut spec = ServerSpec::demo();
    let clinic = spec
        .tenants
        .iter_mut()
        .find(|t| t.id == "clinic")
        .expect("the demo has a clinic tenant");
    // `[tenants.llm]` is a sub-table: it goes after the tenant's other keys.
    clinic.extra = format!(
        "{}\n\n[tenants.llm]\nbase_url = \"{base_url}\"\nmodel = \"fake-model\"\n",
        clinic.extra
    );
    spec
}

/// Whether a request is vaani's end-of-call summary rather than a conversation turn.
fn is_summary_request(request: &Value) -> bool {
    messages_with_role(request, "system")
        .first()
        .is_some_and(|s| s.starts_with("You summarise phone calls"))
}

/// The conversation requests (the plugin's generations) the fake received.
fn turn_requests(fake: &FakeLlm) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| !is_summary_request(r))
        .collect()
}

fn lines(detail: &Value, caller: bool) -> Vec<String> {
    detail["transcript"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| (l["speaker"] == "caller") == caller)
        .filter_map(|l| l["text"].as_str().map(str::to_string))
        .collect()
}

fn extraction<'a>(detail: &'a Value, schema_id: &str) -> &'a Value {
    detail["extractions"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["schema_id"] == schema_id))
        .map(|e| &e["data"])
        .unwrap_or_else(|| panic!("no {schema_id} extraction: {detail:#}"))
}

/// Runs one call from the demo caller through `CALLER` and returns the stored call detail.
fn call_the_clinic(server: &VaaniServer) -> Value {
    // Waits for vaani's BYE; no keys (the scenario offers PCMU, so the audio is u-law).
    let sipp = Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("caller_8k.ulaw,-1,0", "caller_spoken.ulaw,1,0")
        .substitute("<exec play_dtmf=\"12#\"/>", "");
    write_spoken_phrases(sipp.dir(), "caller_spoken.ulaw", Law::Mu, 2.0, CALLER);
    let started = Instant::now();
    sipp.run(server.sip_addr(), CLINIC_NUMBER, Duration::from_secs(90))
        .assert_success();
    eprintln!("the call lasted {:?}", started.elapsed());
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| c["status"] == "completed")
    });
    let id = calls[0]["id"].as_str().expect("call id");
    let detail = server.api_json(&format!("/api/v1/calls/{id}"));
    for line in lines(&detail, true) {
        eprintln!("caller: {}", line.chars().take(100).collect::<String>());
    }
    for line in lines(&detail, false) {
        eprintln!("agent: {line}");
    }
    detail
}

#[test]
fn the_model_books_an_appointment_by_tool_call() {
    let today = utc_date(0);
    let tomorrow = utc_date(1);
    let arguments = json!({
        "patient_name": "John Smith",
        "date": tomorrow,
        "time": "10:00",
        "reason": "cough",
    });
    let fake = {
        let arguments = arguments.clone();
        FakeLlm::start(move |request| {
            if is_summary_request(request) {
                return FakeReply::text(
                    "SUMMARY: John Smith booked an appointment.\nSENTIMENT: positive",
                );
            }
            let last_role = request["messages"]
                .as_array()
                .and_then(|m| m.last())
                .map(|m| m["role"].clone());
            if last_role == Some(json!("tool")) {
                return FakeReply::TextAndToolCalls {
                    text: CLOSING_REPLY.to_string(),
                    tool_calls: vec![("end_call".to_string(), "{}".to_string())],
                };
            }
            let heard = messages_with_role(request, "user").join(" ").to_lowercase();
            // whisper tiny hears the surname reliably ("John" has come out as "Jan").
            if heard.contains("smith") || heard.contains("patient is") {
                FakeReply::tool_call("book_appointment", &arguments)
            } else {
                FakeReply::text(FIRST_REPLY)
            }
        })
    };
    let server = VaaniServer::start(&spec_with_llm(&fake.base_url()));
    let detail = call_the_clinic(&server);

    assert_eq!(detail["status"], "completed", "{detail:#}");
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    // espeak-ng's "John Smith" reaches whisper tiny as anything from "John Smith" to "not
    // missed"; the fake books on "the patient is" as well.
    let heard = lines(&detail, true).join(" ").to_lowercase();
    assert!(heard.contains("appointment"), "{heard}");
    assert!(heard.contains("patient"), "{heard}");
    let agent = lines(&detail, false).join(" ");
    assert!(agent.starts_with("Welcome to Sunny Clinic."), "{agent}");
    assert!(agent.contains("May I have the patient's name?"), "{agent}");
    assert!(
        agent.contains("You're booked for tomorrow at ten."),
        "{agent}"
    );

    let booking = extraction(&detail, "appointment");
    assert_eq!(booking["patient_name"], "John Smith", "{booking:#}");
    assert_eq!(booking["date"], json!(tomorrow), "{booking:#}");
    assert_eq!(booking["day"], "tomorrow", "{booking:#}");
    assert_eq!(booking["time"], "10:00", "{booking:#}");
    assert_eq!(booking["slot"], "morning", "{booking:#}");
    assert_eq!(booking["reason"], "cough", "{booking:#}");
    assert_eq!(booking["caller"], "+919800000001", "{booking:#}");
    let symptoms = extraction(&detail, "symptoms");
    assert_eq!(symptoms["reason"], "cough", "{symptoms:#}");
    assert_eq!(symptoms["urgent"], false, "{symptoms:#}");
    // The plugin's own summary wins over the model's.
    assert!(
        detail["summary"]
            .as_str()
            .is_some_and(|s| s.contains("John Smith") && s.contains(&tomorrow)),
        "{detail:#}"
    );

    let requests = turn_requests(&fake);
    assert!(requests.len() >= 3, "{requests:#?}");
    for request in &requests {
        assert_eq!(request["model"], "fake-model");
        assert_eq!(request["stream"], true);
        assert_eq!(tool_names(request), ["book_appointment", "end_call"]);
        let system = messages_with_role(request, "system").join("\n");
        assert!(system.contains("Sunny Clinic"), "{system}");
        assert!(system.contains(&today), "{system}");
    }
    let first_users = messages_with_role(&requests[0], "user")
        .join(" ")
        .to_lowercase();
    assert!(first_users.contains("appointment"), "{first_users}");
    let booking_tool = requests[0]["tools"]
        .as_array()
        .and_then(|tools| {
            tools
                .iter()
                .find(|t| t["function"]["name"] == "book_appointment")
        })
        .expect("the booking tool");
    assert_eq!(booking_tool["type"], "function");
    assert!(
        booking_tool["function"]["parameters"]["properties"]["date"].is_object(),
        "{booking_tool:#}"
    );
    // The closing request carries the tool call and its result.
    let closing = requests
        .iter()
        .find(|r| {
            r["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .expect("a request with the tool result");
    let messages = closing["messages"].as_array().expect("messages");
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array().and_then(|c| c.first()))
        .expect("the assistant's tool call");
    assert_eq!(call["function"]["name"], "book_appointment");
    let result = messages.iter().find(|m| m["role"] == "tool").expect("tool");
    assert_eq!(result["tool_call_id"], call["id"]);
    let result: Value =
        serde_json::from_str(result["content"].as_str().expect("content")).expect("JSON");
    assert_eq!(result["ok"], true, "{result:#}");
}

#[test]
fn a_failing_model_falls_back_to_the_rule_based_questions() {
    let fake = FakeLlm::start(|_| FakeReply::Error(500));
    let server = VaaniServer::start(&spec_with_llm(&fake.base_url()));
    // The caller asks, gets the apology and the rule-based name question, answers it and hangs
    // up (whether whisper hears the name right is not this test's business).
    let caller: &[(&str, f32)] = &[
        (
            "I would like to book an appointment for tomorrow at ten.",
            8.0,
        ),
        ("My name is John Smith.", 6.0),
    ];
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("caller_8k.alaw,-1,8", "caller_spoken.alaw,1,8")
        .substitute(
            "<pause milliseconds=\"5000\"/>",
            "<pause milliseconds=\"24000\"/>",
        );
    write_spoken_phrases(sipp.dir(), "caller_spoken.alaw", Law::A, 2.0, caller);
    sipp.run(server.sip_addr(), CLINIC_NUMBER, Duration::from_secs(60))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| c["status"] == "completed")
    });
    let id = calls[0]["id"].as_str().expect("call id");
    let detail = server.api_json(&format!("/api/v1/calls/{id}"));
    let heard = lines(&detail, true);
    let agent = lines(&detail, false);
    for line in &heard {
        eprintln!("caller: {}", line.chars().take(100).collect::<String>());
    }
    for line in &agent {
        eprintln!("agent: {line}");
    }

    // A complete record of a normal call.
    assert_eq!(detail["status"], "completed", "{detail:#}");
    assert_eq!(detail["end_reason"], "caller_hangup", "{detail:#}");
    assert!(detail["ended_at_ms"].is_number(), "{detail:#}");
    assert!(detail["error"].is_null(), "{detail:#}");
    assert!(heard.len() >= 2, "{heard:?}");
    let agent = agent.join(" ");
    assert!(agent.starts_with("Welcome to Sunny Clinic."), "{agent}");
    // The apology, then the rule-based questions, which took the first answer's day and time.
    let apology = agent
        .find("Sorry, I'm having a little trouble.")
        .unwrap_or_else(|| panic!("no apology: {agent}"));
    let question = agent
        .find("May I have the patient's name, please?")
        .unwrap_or_else(|| panic!("no rule-based question: {agent}"));
    assert!(apology < question, "{agent}");
    // The name answered, the rule-based flow asks for whatever the first answer left open.
    if heard.join(" ").to_lowercase().contains("smith") {
        let next = &agent[question..];
        assert!(
            [
                "And what is the reason for the visit?",
                "What time would suit you?",
                "Which day would you like to come in?"
            ]
            .iter()
            .any(|q| next.contains(q)),
            "{agent}"
        );
    }
    // The model was asked (and failed) once; the rest of the call did not ask it again.
    let requests = turn_requests(&fake);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(
        messages_with_role(&requests[0], "user")
            .join(" ")
            .to_lowercase()
            .contains("appointment")
    );
}
