//! LLM-mode conversation tests against the SDK mock host.

use super::assistant::{APOLOGY, BOOK_TOOL, END_TOOL};
use super::*;
use vaani_plugin_sdk::testing::{MockAction, TestCall};

/// Monday 2025-03-10, 09:00 UTC.
const MONDAY_9AM_MS: u64 = 1_741_597_200_000;

/// A new caller to "Sunny Clinic", with an LLM.
fn llm_context() -> CallerContext {
    CallerContext {
        config_json: r#"{"clinic_name": "Sunny Clinic"}"#.into(),
        started_at_unix_ms: MONDAY_9AM_MS,
        llm_available: true,
        ..TestCall::<Clinic>::default_context()
    }
}

fn llm_call() -> TestCall<Clinic> {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(llm_context()).unwrap();
    call
}

fn booking_args() -> Value {
    json!({
        "patient_name": "John Smith", "date": "2025-03-11", "time": "10:00", "reason": "cough"
    })
}

fn extraction(call: &TestCall<Clinic>, schema_id: &str) -> Option<Value> {
    call.extractions()
        .into_iter()
        .rev()
        .find(|(id, _)| id == schema_id)
        .map(|(_, data)| data)
}

/// Checks `data` against the declared schema's keys (the mock host does not validate).
fn assert_fits_schema(schema_id: &str, data: &Value) {
    let schema = Clinic::schemas()
        .into_iter()
        .find(|s| s.id == schema_id)
        .unwrap()
        .json_schema;
    let properties = schema["properties"].as_object().unwrap();
    for key in data.as_object().unwrap().keys() {
        assert!(properties.contains_key(key), "{key} is not in {schema_id}");
    }
    for key in schema["required"].as_array().unwrap() {
        assert!(data.get(key.as_str().unwrap()).is_some(), "{key} missing");
    }
}

fn pending_playback(call: &TestCall<Clinic>) -> PlaybackId {
    call.generations()
        .last()
        .and_then(|(handle, _)| handle.playback)
        .expect("a spoken generation")
}

#[test]
fn greets_itself_then_asks_the_model_with_the_transcript_and_tools() {
    let mut call = llm_call();
    assert_eq!(call.said(), vec!["Welcome to Sunny Clinic.", MENU_PROMPT]);
    assert!(call.generations().is_empty(), "the greeting needs no model");

    call.transcript("I would like to book an appointment for tomorrow at ten.")
        .unwrap();
    let generations = call.generations();
    assert_eq!(generations.len(), 1);
    let (handle, request) = &generations[0];
    assert!(request.speak && request.interruptible);
    assert!(handle.playback.is_some());
    let tools: Vec<_> = request.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, [BOOK_TOOL, END_TOOL]);
    assert_eq!(
        request.tools[0].parameters["required"],
        json!(["patient_name", "date", "time", "reason"])
    );
    let system = &request.messages[0];
    assert_eq!(system.role, Role::System);
    assert!(
        system.content.contains("Sunny Clinic"),
        "{}",
        system.content
    );
    assert!(
        system.content.contains("Today is Monday, 2025-03-10"),
        "{}",
        system.content
    );
    assert!(
        system.content.contains("tomorrow Tuesday 2025-03-11"),
        "{}",
        system.content
    );
    assert_eq!(request.messages[1].role, Role::Assistant);
    assert!(
        request.messages[1]
            .content
            .starts_with("Welcome to Sunny Clinic.")
    );
    let last = request.messages.last().unwrap();
    assert_eq!(last.role, Role::User);
    assert_eq!(
        last.content,
        "I would like to book an appointment for tomorrow at ten."
    );
    // The model answers: no rule-based question, no expected-input hint.
    assert_eq!(call.said().len(), 2);
    assert_eq!(call.expected_input(), None);
}

#[test]
fn book_appointment_submits_the_booking_and_asks_for_closing_words() {
    let mut call = llm_call();
    call.transcript("I would like to book an appointment for tomorrow at ten.")
        .unwrap();
    call.reply_text("Sure. May I have the patient's name?")
        .unwrap();
    call.transcript("The patient is John Smith.").unwrap();
    let second = call.last_generation().unwrap();
    let roles: Vec<_> = second.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User
        ]
    );
    assert_eq!(
        second.messages[3].content,
        "Sure. May I have the patient's name?"
    );

    call.reply_tool_call(BOOK_TOOL, booking_args()).unwrap();
    let booking = extraction(&call, APPOINTMENT_SCHEMA).expect("appointment");
    assert_eq!(
        booking,
        json!({
            "day": "tomorrow", "slot": "morning", "time": "10:00", "caller": "+919800000001",
            "patient_name": "John Smith", "reason": "cough", "date": "2025-03-11"
        })
    );
    assert_fits_schema(APPOINTMENT_SCHEMA, &booking);
    let symptoms = extraction(&call, SYMPTOMS_SCHEMA).expect("symptoms");
    assert_eq!(
        symptoms,
        json!({ "reason": "cough", "urgent": false, "keywords": ["cough"] })
    );
    assert_eq!(call.memory(), Some(json!({ "last_booking": booking })));
    assert!(!call.hung_up());

    // The tool's result goes back to the model for the closing words.
    let generations = call.generations();
    assert_eq!(generations.len(), 3);
    let third = &generations[2].1;
    let n = third.messages.len();
    let (asked, answered) = (&third.messages[n - 2], &third.messages[n - 1]);
    assert_eq!(asked.role, Role::Assistant);
    assert_eq!(asked.tool_calls.len(), 1);
    assert_eq!(asked.tool_calls[0].name, BOOK_TOOL);
    assert_eq!(answered.role, Role::Tool);
    assert_eq!(
        answered.tool_call_id.as_deref(),
        Some(asked.tool_calls[0].id.as_str())
    );
    let result: Value = serde_json::from_str(&answered.content).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["booked"]["date"], "2025-03-11");

    let closing = generations[2].0.id;
    call.complete_generation(
        closing,
        "You're booked for tomorrow at ten. Goodbye.",
        vec![ToolCall::new("call-end", END_TOOL, json!({}))],
    )
    .unwrap();
    assert!(call.hung_up());
    assert_eq!(call.generations().len(), 3, "no generation after end_call");
    call.end(EndReason::PluginHangup).unwrap();
    let (summary, sentiment) = call.summary().expect("summary");
    assert!(summary.contains("John Smith"), "{summary}");
    assert!(summary.contains("2025-03-11"), "{summary}");
    assert!(summary.contains("cough"), "{summary}");
    assert_eq!(sentiment, Some(Sentiment::Positive));
}

#[test]
fn a_goodbye_after_the_booking_ends_the_call_without_end_call() {
    let mut call = llm_call();
    call.transcript("Book John Smith tomorrow at ten for a cough.")
        .unwrap();
    call.reply_tool_call(BOOK_TOOL, booking_args()).unwrap();
    call.reply_text("Done, see you tomorrow. Goodbye!").unwrap();
    assert!(call.hung_up());
}

#[test]
fn bad_booking_arguments_go_back_to_the_model() {
    for (args, error) in [
        (
            json!({"patient_name": "Ann", "date": "2025-03-20", "time": "10:00", "reason": "x"}),
            "cannot be booked",
        ),
        (
            json!({"patient_name": "Ann", "date": "2025-03-11", "time": "22:00", "reason": "x"}),
            "between 08:00 and 20:00",
        ),
        (
            json!({"patient_name": "Ann", "date": "2025-03-10", "time": "08:30", "reason": "x"}),
            "already passed",
        ),
        (
            json!({"patient_name": "Ann", "date": "next week", "time": "10:00", "reason": "x"}),
            "YYYY-MM-DD",
        ),
        (
            json!({"date": "2025-03-11", "time": "10:00", "reason": "x"}),
            "patient_name",
        ),
    ] {
        let mut call = llm_call();
        call.transcript("Book me in.").unwrap();
        call.reply_tool_call(BOOK_TOOL, args.clone()).unwrap();
        assert!(call.extractions().is_empty(), "{args}");
        let follow_up = call.last_generation().unwrap();
        let result: Value =
            serde_json::from_str(&follow_up.messages.last().unwrap().content).unwrap();
        assert_eq!(result["ok"], false, "{args}");
        assert!(
            result["error"].as_str().unwrap().contains(error),
            "{args}: {result}"
        );
        assert_eq!(call.generations().len(), 2);
        assert!(!call.hung_up());
    }
}

#[test]
fn a_failed_generation_falls_back_to_the_rule_based_questions() {
    let mut call = llm_call();
    call.transcript("I would like to book an appointment for tomorrow at ten.")
        .unwrap();
    let id = call.generations()[0].0.id;
    call.fail_generation(id, "HTTP 500").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2..], [APOLOGY, NAME_QUESTION]);
    // The rest of the call is rule-based.
    call.transcript("The patient is John Smith.").unwrap();
    assert_eq!(call.last_said().as_deref(), Some(REASON_QUESTION));
    call.transcript("A cough.").unwrap();
    assert!(call.last_said().unwrap().ends_with("is that right?"));
    call.transcript("Yes.").unwrap();
    assert_eq!(call.generations().len(), 1, "no more generations");
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["patient_name"], "John Smith");
    assert_eq!(booking["day"], "tomorrow");
    assert_eq!(booking["time"], "10:00");
    assert!(call.hung_up());
}

#[test]
fn a_refused_request_also_falls_back() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(llm_context()).unwrap();
    // The host says an LLM exists, then refuses the request.
    call.host_mut().set_llm_available(false);
    call.transcript("I need an appointment.").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2..], [APOLOGY, NAME_QUESTION]);
}

#[test]
fn urgent_symptoms_get_the_advice_at_once_with_the_model() {
    let mut call = llm_call();
    call.transcript("My father has chest pain and he can't breathe.")
        .unwrap();
    let advice_at = call
        .actions()
        .iter()
        .position(|a| {
            matches!(a, MockAction::Say { text, options, .. }
            if text == EMERGENCY_ADVICE && !options.interruptible)
        })
        .expect("non-interruptible emergency advice");
    let generate_at = call
        .actions()
        .iter()
        .position(|a| matches!(a, MockAction::Generate { .. }))
        .expect("the model still answers");
    assert!(advice_at < generate_at, "the advice comes first");
    let symptoms = extraction(&call, SYMPTOMS_SCHEMA).unwrap();
    assert_eq!(symptoms["urgent"], true);
    let request = call.last_generation().unwrap();
    let n = request.messages.len();
    assert_eq!(request.messages[n - 2].role, Role::User);
    assert_eq!(request.messages[n - 1].content, EMERGENCY_ADVICE);
    call.end(EndReason::CallerHangup).unwrap();
    let (summary, _) = call.summary().expect("summary");
    assert!(summary.contains("emergency advice"), "{summary}");
}

#[test]
fn a_barge_in_keeps_only_what_the_caller_heard() {
    // Cut while streaming: the generation is cancelled.
    let mut call = llm_call();
    call.transcript("I'd like an appointment.").unwrap();
    let playback = pending_playback(&call);
    let id = call.generations()[0].0.id;
    call.barge_in(playback, 900, Some("Of course. Could I"))
        .unwrap();
    call.finish_generation(id, GenerationOutcome::Cancelled)
        .unwrap();
    call.transcript("It's for John Smith.").unwrap();
    let request = call.last_generation().unwrap();
    let n = request.messages.len();
    assert_eq!(request.messages[n - 2].role, Role::Assistant);
    assert_eq!(request.messages[n - 2].content, "Of course. Could I");
    assert_eq!(request.messages[n - 1].content, "It's for John Smith.");

    // Cut after the reply was complete (its speech still playing).
    let mut call = llm_call();
    call.transcript("I'd like an appointment.").unwrap();
    let playback = pending_playback(&call);
    call.reply_text("Of course. Could I have the patient's name, please?")
        .unwrap();
    call.barge_in(playback, 900, Some("Of course.")).unwrap();
    call.transcript("John Smith.").unwrap();
    let request = call.last_generation().unwrap();
    let n = request.messages.len();
    assert_eq!(request.messages[n - 2].content, "Of course.");

    // The caller's words arrive before the cancelled result: nothing is lost either way.
    let mut call = llm_call();
    call.transcript("I'd like an appointment.").unwrap();
    let playback = pending_playback(&call);
    let id = call.generations()[0].0.id;
    call.barge_in(playback, 500, Some("Of")).unwrap();
    call.transcript("For Friday.").unwrap();
    call.finish_generation(id, GenerationOutcome::Cancelled)
        .unwrap();
    let request = call.last_generation().unwrap();
    let contents: Vec<_> = request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(contents[contents.len() - 2..], ["Of", "For Friday."]);
    assert_eq!(call.generations().len(), 2);
}

#[test]
fn words_before_the_reply_replace_it() {
    let mut call = llm_call();
    call.transcript("Hello.").unwrap();
    let first = call.generations()[0].0.id;
    call.transcript("I need an appointment.").unwrap();
    assert!(
        call.actions()
            .contains(&MockAction::CancelGeneration(first))
    );
    let request = call.last_generation().unwrap();
    assert_eq!(
        request.messages.last().unwrap().content,
        "Hello. I need an appointment."
    );
    // The superseded generation's late result changes nothing.
    let before = call.generations().len();
    call.complete_generation(first, "Hi!", Vec::new()).unwrap();
    assert_eq!(call.generations().len(), before);
}

#[test]
fn use_llm_false_keeps_the_rule_based_flow() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(CallerContext {
        config_json: r#"{"clinic_name": "Sunny Clinic", "use_llm": false}"#.into(),
        ..llm_context()
    })
    .unwrap();
    call.transcript("I would like to book an appointment.")
        .unwrap();
    assert_eq!(call.last_said().as_deref(), Some(NAME_QUESTION));
    assert!(call.generations().is_empty());
}

#[test]
fn without_an_llm_the_flow_is_rule_based() {
    let mut call = TestCall::<Clinic>::new().without_llm();
    call.start().unwrap();
    call.transcript("I would like to book an appointment.")
        .unwrap();
    assert_eq!(call.last_said().as_deref(), Some(NAME_QUESTION));
    assert!(call.generations().is_empty());
}

#[test]
fn keys_switch_to_the_keypad_flow() {
    let mut call = llm_call();
    call.transcript("Hello?").unwrap();
    let id = call.generations()[0].0.id;
    call.dtmf('1').unwrap();
    assert!(call.actions().contains(&MockAction::CancelGeneration(id)));
    assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
    call.dtmf_keys("21").unwrap();
    call.transcript("Yes.").unwrap();
    assert_eq!(
        extraction(&call, APPOINTMENT_SCHEMA).unwrap()["day"],
        "tomorrow"
    );
    assert_eq!(call.generations().len(), 1);
}

#[test]
fn returning_callers_are_greeted_by_name_and_their_history_is_in_the_prompt() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(CallerContext {
        caller_name: Some("Asha".into()),
        previous_calls: 2,
        recent_calls: vec![PastCall {
            call_id: "earlier".into(),
            started_at_unix_ms: MONDAY_9AM_MS - 3 * 86_400_000,
            duration_secs: 60,
            summary: Some("Asha booked a check-up.".into()),
            extractions: vec![PastExtraction {
                schema_id: APPOINTMENT_SCHEMA.into(),
                data_json: r#"{"day":"friday","slot":"morning","time":"09:30","caller":"+919800000001","patient_name":"Asha","date":"2025-03-07"}"#.into(),
            }],
        }],
        ..llm_context()
    })
    .unwrap();
    assert_eq!(call.said()[0], "Welcome back to Sunny Clinic, Asha.");
    call.transcript("I need another appointment.").unwrap();
    let system = call.last_generation().unwrap().messages[0].content.clone();
    assert!(system.contains("The caller is Asha"), "{system}");
    assert!(
        system.contains("2025-03-07: Asha booked a check-up.; booked an appointment for Asha on 2025-03-07 at 09:30"),
        "{system}"
    );
    // A booking for the known caller may leave out the name.
    call.reply_tool_call(
        BOOK_TOOL,
        json!({"date": "2025-03-12", "time": "16:00", "reason": "check-up"}),
    )
    .unwrap();
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["patient_name"], "Asha");
    assert_eq!(booking["day"], "day_after_tomorrow");
    assert_eq!(booking["slot"], "afternoon");
}

#[test]
fn silence_repeats_the_last_reply_and_ends_a_booked_call() {
    let mut call = llm_call();
    call.silence(5000).unwrap();
    assert_eq!(call.last_said().as_deref(), Some(MENU_PROMPT));
    call.transcript("Appointment please.").unwrap();
    call.silence(5000).unwrap();
    assert_eq!(
        call.last_said().as_deref(),
        Some(MENU_PROMPT),
        "reply pending"
    );
    call.reply_text("Sure, for whom?").unwrap();
    call.silence(5000).unwrap();
    assert_eq!(call.last_said().as_deref(), Some("Sure, for whom?"));
    call.transcript("John Smith, tomorrow at ten, cough.")
        .unwrap();
    call.reply_tool_call(BOOK_TOOL, booking_args()).unwrap();
    call.reply_text("All set for tomorrow at ten.").unwrap();
    assert!(!call.hung_up());
    call.silence(5000).unwrap();
    assert!(call.hung_up());
}

#[test]
fn the_time_zone_decides_what_today_is() {
    let mut call = TestCall::<Clinic>::new();
    // 20:00 UTC on Monday is already Tuesday 01:30 in India.
    call.start_with(CallerContext {
        config_json: r#"{"utc_offset_minutes": 330}"#.into(),
        started_at_unix_ms: MONDAY_9AM_MS + 11 * 3_600_000,
        ..llm_context()
    })
    .unwrap();
    call.transcript("Hi.").unwrap();
    let system = call.last_generation().unwrap().messages[0].content.clone();
    assert!(system.contains("Today is Tuesday, 2025-03-11"), "{system}");
}
