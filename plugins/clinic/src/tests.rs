//! Conversation tests against the SDK mock host.

use super::*;
use vaani_plugin_sdk::testing::{MockAction, TestCall};

fn known_caller() -> CallerContext {
    CallerContext {
        caller_name: Some("Asha".into()),
        ..TestCall::<Clinic>::default_context()
    }
}

#[test]
fn greets_known_callers_by_name() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(known_caller()).unwrap();
    assert_eq!(
        call.said(),
        vec!["Welcome back to our clinic, Asha.", MENU_PROMPT]
    );

    let mut anonymous = TestCall::<Clinic>::new();
    anonymous.start().unwrap();
    assert_eq!(anonymous.said()[0], "Welcome to our clinic.");
}

#[test]
fn uses_the_configured_name_and_remembers_the_last_booking() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(CallerContext {
        config_json: r#"{"clinic_name": "Sunny Clinic"}"#.into(),
        memory_json: Some(
            r#"{"last_booking": {"day": "tomorrow", "slot": "morning", "time": "10:00"}}"#.into(),
        ),
        previous_calls: 1,
        ..TestCall::<Clinic>::default_context()
    })
    .unwrap();
    assert_eq!(
        call.said()[0],
        "Welcome back to Sunny Clinic. Your last booking was for tomorrow morning at 10:00."
    );
}

#[test]
fn ignores_memory_it_does_not_understand() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(CallerContext {
        memory_json: Some(r#"{"last_booking": {"day": "someday"}}"#.into()),
        ..TestCall::<Clinic>::default_context()
    })
    .unwrap();
    assert_eq!(call.said()[0], "Welcome to our clinic.");
}

#[test]
fn books_tomorrow_afternoon() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(known_caller()).unwrap();
    call.dtmf_keys("122").unwrap();
    assert!(
        call.last_said()
            .unwrap()
            .starts_with("You chose tomorrow afternoon at 14:00")
    );
    assert!(!call.hung_up());
    call.dtmf('1').unwrap();
    let expected = json!({
        "day": "tomorrow", "slot": "afternoon", "time": "14:00",
        "caller": "+919800000001", "patient_name": "Asha"
    });
    assert_eq!(
        call.extractions(),
        vec![(APPOINTMENT_SCHEMA.to_string(), expected.clone())]
    );
    assert_eq!(call.memory(), Some(json!({ "last_booking": expected })));
    assert_eq!(
        call.last_said().as_deref(),
        Some("Your appointment is booked for tomorrow afternoon at 14:00. Goodbye.")
    );
    assert!(call.hung_up());
}

#[test]
fn invalid_keys_reprompt_without_advancing() {
    let mut call = TestCall::<Clinic>::new();
    call.start().unwrap();
    call.dtmf('9').unwrap();
    assert_eq!(call.said()[2..], [INVALID_KEY, MENU_PROMPT]);
    call.dtmf('1').unwrap();
    call.dtmf('7').unwrap();
    assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
    call.dtmf('3').unwrap();
    call.dtmf('#').unwrap();
    assert_eq!(call.last_said().as_deref(), Some(SLOT_PROMPT));
    call.dtmf('3').unwrap();
    call.dtmf('2').unwrap(); // start over
    assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
    call.dtmf_keys("3").unwrap();
    call.dtmf_keys("31").unwrap();
    let (_, booking) = &call.extractions()[0];
    assert_eq!(booking["day"], "day_after_tomorrow");
    assert_eq!(booking["slot"], "evening");
    assert_eq!(booking["time"], "18:00");
    assert!(booking.get("patient_name").is_none());
}

#[test]
fn silence_repeats_the_question_and_done_ignores_keys() {
    let mut call = TestCall::<Clinic>::new();
    call.start().unwrap();
    call.silence(5000).unwrap();
    assert_eq!(call.last_said().as_deref(), Some(MENU_PROMPT));
    call.dtmf_keys("1111").unwrap();
    let before = call.actions().len();
    call.dtmf('1').unwrap();
    call.silence(5000).unwrap();
    assert_eq!(call.actions().len(), before);
}

/// A call from a new caller to "Sunny Clinic".
fn sunny() -> TestCall<Clinic> {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(CallerContext {
        config_json: r#"{"clinic_name": "Sunny Clinic"}"#.into(),
        ..TestCall::<Clinic>::default_context()
    })
    .unwrap();
    call
}

fn say(call: &mut TestCall<Clinic>, text: &str) -> String {
    call.transcript(text).unwrap();
    call.last_said().unwrap_or_default()
}

fn extraction(call: &TestCall<Clinic>, schema_id: &str) -> Option<Value> {
    call.extractions()
        .into_iter()
        .rev()
        .find(|(id, _)| id == schema_id)
        .map(|(_, data)| data)
}

fn caller_names(call: &TestCall<Clinic>) -> Vec<String> {
    call.actions()
        .iter()
        .filter_map(|a| match a {
            MockAction::SetCallerName(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_menu_invites_keys_and_speech() {
    let call = sunny();
    assert_eq!(
        call.said(),
        vec![
            "Welcome to Sunny Clinic.",
            "Press 1 to book an appointment, or tell me what you need."
        ]
    );
}

#[test]
fn books_by_voice_one_answer_at_a_time() {
    let mut call = sunny();
    assert_eq!(
        say(&mut call, "I would like to book an appointment."),
        NAME_QUESTION
    );
    assert_eq!(say(&mut call, "My name is John Smith."), DAY_QUESTION);
    assert_eq!(caller_names(&call), vec!["John Smith"]);
    assert_eq!(say(&mut call, "Tomorrow."), TIME_QUESTION);
    assert_eq!(say(&mut call, "Ten in the morning."), REASON_QUESTION);
    assert_eq!(
        say(&mut call, "I have a bad cough."),
        "An appointment for John Smith tomorrow morning at 10:00, for a bad cough, is that right?"
    );
    assert_eq!(
        extraction(&call, SYMPTOMS_SCHEMA),
        Some(json!({ "reason": "a bad cough", "urgent": false, "keywords": ["cough"] }))
    );
    assert!(!call.hung_up());
    assert_eq!(
        say(&mut call, "Yes."),
        "Your appointment is booked for tomorrow morning at 10:00. Goodbye."
    );
    let booking = json!({
        "day": "tomorrow", "slot": "morning", "time": "10:00", "caller": "+919800000001",
        "patient_name": "John Smith", "reason": "a bad cough"
    });
    assert_eq!(extraction(&call, APPOINTMENT_SCHEMA), Some(booking.clone()));
    assert_eq!(call.memory(), Some(json!({ "last_booking": booking })));
    assert!(call.hung_up());
    // Done: later speech changes nothing.
    let before = call.actions().len();
    call.transcript("Hello?").unwrap();
    assert_eq!(call.actions().len(), before);
}

#[test]
fn one_sentence_can_answer_several_questions() {
    let mut call = sunny();
    assert_eq!(
        say(
            &mut call,
            "Hi, my name is Priya. I'd like to book an appointment for tomorrow at ten."
        ),
        REASON_QUESTION
    );
    assert_eq!(
        say(&mut call, "Fever."),
        "An appointment for Priya tomorrow morning at 10:00, for fever, is that right?"
    );
}

#[test]
fn the_caller_may_start_with_any_answer() {
    // Straight to the symptoms: the reason is taken, the name asked next.
    let mut call = sunny();
    assert_eq!(say(&mut call, "I have a bad cough."), NAME_QUESTION);
    assert_eq!(
        extraction(&call, SYMPTOMS_SCHEMA).unwrap()["keywords"],
        json!(["cough"])
    );
    // Straight to the day.
    let mut call = sunny();
    assert_eq!(say(&mut call, "Tomorrow morning, please."), NAME_QUESTION);
    assert_eq!(say(&mut call, "Ravi."), REASON_QUESTION);
}

#[test]
fn known_callers_are_not_asked_their_name() {
    let mut call = TestCall::<Clinic>::new();
    call.start_with(known_caller()).unwrap();
    assert_eq!(say(&mut call, "I need an appointment."), DAY_QUESTION);
    assert!(caller_names(&call).is_empty());
    say(&mut call, "Friday.");
    say(&mut call, "Half past two.");
    assert_eq!(
        say(&mut call, "A check-up."),
        "An appointment for Asha Friday afternoon at 14:30, for a check up, is that right?"
    );
    say(&mut call, "Yeah.");
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["day"], "friday");
    assert_eq!(booking["slot"], "afternoon");
    assert_eq!(booking["time"], "14:30");
    assert_eq!(booking["patient_name"], "Asha");
}

#[test]
fn understands_whisper_style_times() {
    for (said, time) in [
        ("Ten.", "10:00"),
        ("10.", "10:00"),
        ("10 a.m.", "10:00"),
        ("Ten o'clock in the morning.", "10:00"),
        ("2:30 p.m.", "14:30"),
        ("Half past two.", "14:30"),
        ("In the afternoon.", "14:00"),
        ("Evening, please.", "18:00"),
        ("Morning.", "10:00"),
    ] {
        let mut call = sunny();
        say(&mut call, "Appointment please.");
        say(&mut call, "John.");
        say(&mut call, "The day after tomorrow.");
        assert_eq!(say(&mut call, said), REASON_QUESTION, "{said}");
        say(&mut call, "Headache.");
        say(&mut call, "Correct.");
        let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
        assert_eq!(booking["time"], time, "{said}");
        assert_eq!(booking["day"], "day_after_tomorrow", "{said}");
    }
}

#[test]
fn times_outside_clinic_hours_are_refused() {
    let mut call = sunny();
    say(&mut call, "Book an appointment.");
    say(&mut call, "Anil.");
    say(&mut call, "Today.");
    call.transcript("Eleven p.m.").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2], OPENING_HOURS);
    assert_eq!(said[said.len() - 1], TIME_QUESTION);
    assert_eq!(say(&mut call, "Nine in the morning."), REASON_QUESTION);
}

#[test]
fn no_starts_again_and_a_correction_is_read_back() {
    let mut call = sunny();
    say(&mut call, "I'd like an appointment.");
    say(&mut call, "John Smith.");
    say(&mut call, "Monday.");
    say(&mut call, "10 am.");
    say(&mut call, "Back pain.");
    assert_eq!(
        say(&mut call, "No, Tuesday at three."),
        "An appointment for John Smith Tuesday afternoon at 15:00, for back pain, is that right?"
    );
    call.transcript("No.").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2..], [START_AGAIN, NAME_QUESTION]);
    assert!(extraction(&call, APPOINTMENT_SCHEMA).is_none());
    say(&mut call, "Mary Jones.");
    say(&mut call, "Tomorrow.");
    say(&mut call, "Evening.");
    say(&mut call, "A rash.");
    say(&mut call, "That's right.");
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["patient_name"], "Mary Jones");
    assert_eq!(booking["time"], "18:00");
    assert_eq!(booking["reason"], "a rash");
    assert_eq!(caller_names(&call), vec!["John Smith", "Mary Jones"]);
}

#[test]
fn urgent_symptoms_get_emergency_advice_at_once() {
    let mut call = sunny();
    call.transcript("My father has chest pain and he can't breathe.")
        .unwrap();
    let advice = call
        .actions()
        .iter()
        .find_map(|a| match a {
            MockAction::Say { text, options, .. } if text == EMERGENCY_ADVICE => {
                Some(options.clone())
            }
            _ => None,
        })
        .expect("emergency advice");
    assert!(!advice.interruptible, "the advice must not be cut short");
    assert!(
        EMERGENCY_ADVICE.starts_with("If this is an emergency, please hang up and call 112 now")
    );
    let symptoms = extraction(&call, SYMPTOMS_SCHEMA).unwrap();
    assert_eq!(symptoms["urgent"], true);
    assert_eq!(
        symptoms["keywords"],
        json!(["chest pain", "breathing difficulty"])
    );
    // Only one symptoms extraction for one sentence; the booking can go on.
    assert_eq!(call.extractions().len(), 1);
    assert_eq!(call.last_said().as_deref(), Some(NAME_QUESTION));
}

#[test]
fn urgent_reason_mid_booking() {
    let mut call = sunny();
    say(&mut call, "Appointment.");
    say(&mut call, "Sam.");
    say(&mut call, "Today.");
    say(&mut call, "Noon.");
    call.transcript("She passed out this morning.").unwrap();
    let said = call.said();
    assert!(said.contains(&EMERGENCY_ADVICE.to_string()));
    assert!(said.last().unwrap().ends_with("is that right?"));
    let symptoms: Vec<_> = call
        .extractions()
        .into_iter()
        .filter(|(id, _)| id == SYMPTOMS_SCHEMA)
        .collect();
    assert_eq!(symptoms.len(), 1);
    assert_eq!(symptoms[0].1["urgent"], true);
    say(&mut call, "Yes.");
    assert_eq!(
        extraction(&call, APPOINTMENT_SCHEMA).unwrap()["time"],
        "12:00"
    );
}

#[test]
fn misunderstood_answers_are_asked_again_then_the_keypad_is_offered() {
    let mut call = sunny();
    say(&mut call, "Book an appointment.");
    say(&mut call, "Joe.");
    call.transcript("Hmm, let me think.").unwrap();
    assert_eq!(
        call.said()[call.said().len() - 2..],
        [NOT_UNDERSTOOD, DAY_QUESTION]
    );
    call.transcript("Whenever.").unwrap();
    assert_eq!(
        call.said()[call.said().len() - 2..],
        [USE_KEYPAD, DAY_PROMPT]
    );
    // The keypad flow takes over; the name is kept.
    call.dtmf_keys("23").unwrap();
    assert!(
        call.last_said()
            .unwrap()
            .starts_with("You chose tomorrow evening at 18:00. Press 1 to confirm")
    );
    call.dtmf('1').unwrap();
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["patient_name"], "Joe");
    assert!(booking.get("reason").is_none());
}

#[test]
fn the_menu_reasks_once_then_offers_the_keypad() {
    let mut call = sunny();
    call.transcript("What are your opening hours?").unwrap();
    assert_eq!(call.said()[2..], [NOT_UNDERSTOOD, MENU_PROMPT]);
    call.transcript("Hello?").unwrap();
    assert_eq!(call.said()[4..], [USE_KEYPAD, KEYPAD_MENU_PROMPT]);
    // Speech still works after the offer.
    assert_eq!(say(&mut call, "I want an appointment."), NAME_QUESTION);
}

#[test]
fn spoken_answers_also_work_with_keypad_prompts() {
    let mut call = sunny();
    call.dtmf('1').unwrap();
    assert_eq!(say(&mut call, "Tomorrow."), SLOT_PROMPT);
    assert!(
        say(&mut call, "Two thirty.").starts_with("You chose tomorrow afternoon at 14:30. Press 1")
    );
    say(&mut call, "Yes.");
    assert_eq!(
        extraction(&call, APPOINTMENT_SCHEMA).unwrap()["time"],
        "14:30"
    );
}

#[test]
fn keys_during_a_spoken_question_switch_to_the_keypad() {
    let mut call = sunny();
    say(&mut call, "Appointment.");
    call.dtmf('5').unwrap();
    assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
    call.dtmf_keys("111").unwrap();
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["day"], "today");
    assert!(booking.get("patient_name").is_none());
}

#[test]
fn partial_transcripts_and_empty_finals_are_ignored() {
    let mut call = sunny();
    let before = call.actions().len();
    call.send(Event::TranscriptPartial(Utterance {
        text: "I would like".into(),
        ..Utterance::default()
    }))
    .unwrap();
    call.transcript(" ... ").unwrap();
    assert_eq!(call.actions().len(), before);
}

#[test]
fn remembers_spoken_bookings_for_the_next_call() {
    let mut call = sunny();
    for said in [
        "Appointment.",
        "Asha Rao.",
        "Wednesday.",
        "Quarter past four.",
        "Cold.",
        "Yes please.",
    ] {
        call.transcript(said).unwrap();
    }
    let memory = call.memory().unwrap();
    let mut next = TestCall::<Clinic>::new();
    next.start_with(CallerContext {
        caller_name: Some("Asha Rao".into()),
        memory_json: Some(memory.to_string()),
        config_json: r#"{"clinic_name": "Sunny Clinic"}"#.into(),
        ..TestCall::<Clinic>::default_context()
    })
    .unwrap();
    assert_eq!(
        next.said()[0],
        "Welcome back to Sunny Clinic, Asha Rao. Your last booking was for Wednesday afternoon at 16:15."
    );
}

#[test]
fn declares_both_schemas() {
    let schemas = Clinic::schemas();
    let ids: Vec<_> = schemas.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [APPOINTMENT_SCHEMA, SYMPTOMS_SCHEMA]);
    assert_eq!(
        schemas[1].json_schema["required"],
        json!(["reason", "urgent", "keywords"])
    );
    let days = &schemas[0].json_schema["properties"]["day"]["enum"];
    for day in [
        "today",
        "tomorrow",
        "day_after_tomorrow",
        "monday",
        "sunday",
    ] {
        assert!(days.as_array().unwrap().contains(&json!(day)), "{day}");
    }
}

#[test]
fn emergency_words_are_not_a_miss_or_a_no() {
    let mut call = sunny();
    say(&mut call, "Appointment, please.");
    call.transcript("My husband is unconscious.").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2..], [EMERGENCY_ADVICE, NAME_QUESTION]);
    say(&mut call, "Vikram.");
    say(&mut call, "Today.");
    say(&mut call, "Evening.");
    // The reason was already given with the emergency.
    assert!(call.last_said().unwrap().ends_with("is that right?"));
    call.transcript("He is not breathing!").unwrap();
    let said = call.said();
    assert_eq!(said[said.len() - 2], EMERGENCY_ADVICE);
    assert!(said[said.len() - 1].ends_with("is that right?"));
    assert!(!said.contains(&START_AGAIN.to_string()));
    assert!(!said.contains(&NOT_UNDERSTOOD.to_string()));
    say(&mut call, "Yes.");
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["reason"], "my husband is unconscious");
    let urgent = call
        .extractions()
        .iter()
        .filter(|(id, data)| id == SYMPTOMS_SCHEMA && data["urgent"] == true)
        .count();
    assert_eq!(urgent, 2);
}

#[test]
fn whisper_possessive_days_are_understood() {
    let mut call = sunny();
    assert_eq!(
        say(
            &mut call,
            "I would like to book an appointment for tomorrow's 10."
        ),
        NAME_QUESTION
    );
    assert_eq!(say(&mut call, "John Smith."), REASON_QUESTION);
    say(&mut call, "Cough.");
    say(&mut call, "Yes.");
    let booking = extraction(&call, APPOINTMENT_SCHEMA).unwrap();
    assert_eq!(booking["day"], "tomorrow");
    assert_eq!(booking["time"], "10:00");
}
