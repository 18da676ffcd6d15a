//! The SDK's native mock host: a plugin driven through `TestCall`.

use std::time::Duration;

use vaani_plugin_sdk::testing::{MAX_SAY_BYTES, MockAction, TestCall};
use vaani_plugin_sdk::*;

#[derive(Default)]
struct Probe {
    events: Vec<String>,
    timer: Option<TimerId>,
}

impl Plugin for Probe {
    fn name() -> &'static str {
        "probe"
    }

    fn version() -> &'static str {
        "1.2.3"
    }

    fn schemas() -> Vec<Schema> {
        vec![schema(
            "note",
            "A note",
            json!({"type": "object", "required": ["text"]}),
        )]
    }

    fn on_call_started(&mut self, call: &mut Call, ctx: &CallerContext) -> Result {
        self.events.push(format!("started:{}", ctx.caller));
        call.say("first")?;
        call.say_with(
            "second",
            SayOptions {
                voice: Some("asha".into()),
                language: Some("hi-IN".into()),
                interruptible: false,
            },
        )?;
        self.timer = Some(call.set_timer(Duration::from_secs(5), "reminder")?);
        Ok(())
    }

    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        self.events.push(format!("dtmf:{digit}"));
        match digit {
            '1' => call.extract("note", &json!({"text": "hello"}))?,
            '2' => call.extract("undeclared", &json!({}))?,
            '3' => {
                call.say("x".repeat(MAX_SAY_BYTES + 1))?;
            }
            '4' => {
                call.kv_set("counter", b"7")?;
                let value = call.kv_get("counter")?;
                call.say(format!(
                    "counter is {}",
                    String::from_utf8_lossy(&value.unwrap_or_default())
                ))?;
                call.kv_delete("counter")?;
            }
            '5' => {
                call.kv_get("")?;
            }
            '6' => {
                if let Some(timer) = self.timer.take() {
                    call.cancel_timer(timer);
                }
            }
            '7' => return Err(Error::invalid_state("seven is not allowed")),
            '8' => {
                call.set_memory(&json!({"visits": 2}))?;
                call.set_caller_name("Asha")?;
                call.log(LogLevel::Info, "remembered");
                call.stop_playback(None);
                call.play_asset("hold-music", true)?;
                call.hangup_with_reason("done");
            }
            _ => {}
        }
        Ok(())
    }

    fn on_timer(&mut self, call: &mut Call, tag: &str) -> Result {
        call.say(format!("timer {tag}"))?;
        Ok(())
    }
}

/// A plugin that implements nothing: every default must be a silent no-op.
#[derive(Default)]
struct Silent;
impl Plugin for Silent {}

#[test]
fn info_comes_from_name_version_and_schemas() {
    let info = Probe::info();
    assert_eq!(info.name, "probe");
    assert_eq!(info.version, "1.2.3");
    assert_eq!(info.schemas.len(), 1);
    assert_eq!(info.schemas[0].id, "note");
    assert_eq!(info.schemas[0].json_schema["required"][0], "text");

    let silent = Silent::info();
    assert_eq!(silent.name, "unnamed-plugin");
    assert!(silent.schemas.is_empty());
}

#[test]
fn say_records_text_options_and_increasing_playback_ids() {
    let mut call = TestCall::<Probe>::new();
    call.start().unwrap();
    assert_eq!(call.said(), vec!["first", "second"]);
    let ids: Vec<PlaybackId> = call
        .actions()
        .iter()
        .filter_map(|a| match a {
            MockAction::Say { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![PlaybackId(1), PlaybackId(2)]);
    match &call.actions()[1] {
        MockAction::Say { options, .. } => {
            assert_eq!(options.voice.as_deref(), Some("asha"));
            assert!(!options.interruptible);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(call.plugin().events, vec!["started:+919800000001"]);
}

#[test]
fn declared_extraction_is_recorded_and_undeclared_is_refused() {
    let mut call = TestCall::<Probe>::new();
    call.start().unwrap();
    call.dtmf('1').unwrap();
    assert_eq!(
        call.extractions(),
        vec![("note".to_string(), json!({"text": "hello"}))]
    );
    let err = call.dtmf('2').unwrap_err();
    assert!(err.message().contains("not declared"), "{err:?}");
    assert_eq!(call.extractions().len(), 1);
}

#[test]
fn oversized_say_is_an_error_not_a_panic() {
    let mut call = TestCall::<Probe>::new();
    let err = call.dtmf('3').unwrap_err();
    assert!(err.message().contains("limit"), "{err:?}");
    assert!(call.said().is_empty());
}

#[test]
fn kv_round_trips_and_rejects_empty_keys() {
    let mut call = TestCall::<Probe>::new();
    call.dtmf('4').unwrap();
    assert_eq!(call.last_said().as_deref(), Some("counter is 7"));
    assert!(call.host().kv().is_empty());
    let err = call.dtmf('5').unwrap_err();
    assert_eq!(err.message(), "invalid key");
}

#[test]
fn timers_fire_by_tag_and_can_be_cancelled() {
    let mut call = TestCall::<Probe>::new();
    call.start().unwrap();
    assert_eq!(call.host().active_timers().len(), 1);
    assert!(call.fire_timer("reminder").unwrap());
    assert_eq!(call.last_said().as_deref(), Some("timer reminder"));
    assert!(!call.fire_timer("reminder").unwrap());

    let mut cancelled = TestCall::<Probe>::new();
    cancelled.start().unwrap();
    cancelled.dtmf('6').unwrap();
    assert!(cancelled.host().active_timers().is_empty());
    assert!(!cancelled.fire_timer("reminder").unwrap());
}

#[test]
fn plugin_errors_carry_kind_and_message() {
    let mut call = TestCall::<Probe>::new();
    let err = call.dtmf('7').unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.message(), "seven is not allowed");
}

#[test]
fn call_control_actions_are_recorded_in_order() {
    let mut call = TestCall::<Probe>::new();
    call.dtmf('8').unwrap();
    let actions = call.take_actions();
    assert_eq!(actions.len(), 6, "{actions:?}");
    assert_eq!(actions[0], MockAction::SetMemory(json!({"visits": 2})));
    assert_eq!(actions[1], MockAction::SetCallerName("Asha".into()));
    assert!(
        matches!(&actions[2], MockAction::Log { level: LogLevel::Info, message } if message == "remembered")
    );
    assert_eq!(actions[3], MockAction::StopPlayback(None));
    assert!(
        matches!(&actions[4], MockAction::PlayAsset { asset_id, interruptible: true, .. } if asset_id == "hold-music")
    );
    assert_eq!(actions[5], MockAction::Hangup(Some("done".into())));
    assert!(call.actions().is_empty());
}

#[test]
fn default_methods_do_nothing() {
    let mut call = TestCall::<Silent>::new();
    call.start().unwrap();
    call.dtmf_keys("123#").unwrap();
    call.transcript("hello").unwrap();
    call.silence(5000).unwrap();
    call.barge_in(PlaybackId(1), 300, None).unwrap();
    call.send(Event::SpeechStarted { media_ms: 10 }).unwrap();
    call.send(Event::TransferFailed(TransferFailure {
        target: "frontdesk".into(),
        status: Some(486),
        reason: "busy".into(),
    }))
    .unwrap();
    call.end(EndReason::CallerHangup).unwrap();
    assert!(call.actions().is_empty());
}

#[test]
fn caller_context_parses_memory_and_config() {
    let ctx = CallerContext {
        memory_json: Some(r#"{"last_booking":{"day":"today"}}"#.into()),
        config_json: r#"{"clinic":"Sunrise"}"#.into(),
        ..CallerContext::default()
    };
    assert_eq!(ctx.memory().unwrap()["last_booking"]["day"], "today");
    assert_eq!(ctx.config()["clinic"], "Sunrise");
    let broken = CallerContext {
        memory_json: Some("{".into()),
        ..CallerContext::default()
    };
    assert!(broken.memory().is_none());
    assert!(broken.config().is_null());
}

/// A small LLM agent: greets with a spoken generation, asks the model on each
/// final transcript, looks up slots over HTTP when the model calls a tool.
#[derive(Default)]
struct Agent {
    history: Vec<String>,
    heard: Vec<(u64, u32, Option<String>)>,
}

impl Plugin for Agent {
    fn on_call_started(&mut self, call: &mut Call, ctx: &CallerContext) -> Result {
        if !ctx.llm_available {
            call.say("Please call back later.")?;
            return Ok(());
        }
        call.generate(&LlmRequest::new().system("Greet the caller.").speak(true))?;
        Ok(())
    }

    fn on_transcript(&mut self, call: &mut Call, u: &Utterance, is_final: bool) -> Result {
        if is_final {
            self.history.push(u.text.clone());
            let mut request = LlmRequest::new().system("Book appointments.").tool(
                "slots",
                "Free slots on a day",
                json!({"type": "object", "properties": {"day": {"type": "string"}}}),
            );
            for line in &self.history {
                request = request.user(line.clone());
            }
            call.generate(&request.speak(true))?;
        }
        Ok(())
    }

    fn on_generation(&mut self, call: &mut Call, result: &GenerationResult) -> Result {
        match &result.outcome {
            GenerationOutcome::Completed(g) => {
                for tool in &g.tool_calls {
                    let day = tool.arguments()["day"]
                        .as_str()
                        .unwrap_or("today")
                        .to_string();
                    call.fetch(&FetchRequest::get(format!(
                        "https://clinic.example/slots?day={day}"
                    )))?;
                }
            }
            GenerationOutcome::Cancelled => {}
            GenerationOutcome::Failed(m) => {
                call.say(format!("Sorry, {m}"))?;
            }
        }
        Ok(())
    }

    fn on_fetch(&mut self, call: &mut Call, result: &FetchResult) -> Result {
        match &result.outcome {
            FetchOutcome::Response(r) if r.is_success() => {
                call.say(format!("Free: {}", r.text()))?;
                call.expect_input(ExpectedInput::Digits);
            }
            _ => {
                call.say("I could not check the slots.")?;
            }
        }
        Ok(())
    }

    fn on_barge_in(&mut self, _call: &mut Call, i: &Interruption) -> Result {
        self.heard
            .push((i.playback.0, i.heard_ms, i.heard_text.clone()));
        Ok(())
    }

    fn on_call_ended(&mut self, call: &mut Call, _reason: EndReason) -> Result {
        call.set_summary("Asked for slots.", Some(Sentiment::Neutral))?;
        Ok(())
    }
}

#[test]
fn generations_fetches_and_summary_round_trip_through_the_mock() {
    let mut call = TestCall::<Agent>::new();
    call.start().unwrap();
    let (greeting, request) = call.generations().pop().unwrap();
    assert_eq!(greeting.id, GenerationId(1));
    assert_eq!(greeting.playback, Some(PlaybackId(1)));
    assert!(request.speak);
    call.reply_text("Hello, how can I help?").unwrap();

    call.transcript("Any slots on Monday?").unwrap();
    let asked = call.last_generation().unwrap();
    assert_eq!(
        asked.messages.last().unwrap().content,
        "Any slots on Monday?"
    );
    assert_eq!(asked.tools[0].name, "slots");
    call.reply_tool_call("slots", json!({"day": "monday"}))
        .unwrap();

    let (fetch, request) = call.fetches().pop().unwrap();
    assert_eq!(request.url, "https://clinic.example/slots?day=monday");
    call.complete_fetch(fetch, 200, "10:00, 11:30").unwrap();
    assert_eq!(call.last_said().as_deref(), Some("Free: 10:00, 11:30"));
    assert_eq!(call.expected_input(), Some(ExpectedInput::Digits));
    // A finished fetch cannot be finished twice.
    assert!(call.complete_fetch(fetch, 200, "again").is_err());

    call.barge_in(PlaybackId(2), 640, Some("Free: 10")).unwrap();
    assert_eq!(
        call.plugin().heard,
        vec![(2, 640, Some("Free: 10".to_string()))]
    );

    call.end(EndReason::MaxDuration).unwrap();
    assert_eq!(
        call.summary(),
        Some(("Asked for slots.".to_string(), Some(Sentiment::Neutral)))
    );
}

#[test]
fn without_an_llm_generate_is_not_configured() {
    let mut call = TestCall::<Agent>::new().without_llm();
    call.start().unwrap();
    assert_eq!(call.said(), vec!["Please call back later."]);
    let err = call.transcript("hello").unwrap_err();
    assert!(err.message().contains("no LLM"), "{err:?}");
    assert!(call.generations().is_empty());
}

#[test]
fn failed_generation_reaches_the_plugin_and_bad_urls_are_refused() {
    let mut call = TestCall::<Agent>::new();
    call.start().unwrap();
    let (greeting, _) = call.generations()[0];
    call.fail_generation(greeting.id, "provider timed out")
        .unwrap();
    assert_eq!(
        call.last_said().as_deref(),
        Some("Sorry, provider timed out")
    );
    assert!(call.reply_text("late").is_err());

    let mut host = vaani_plugin_sdk::testing::MockHost::default();
    let mut sdk_call = Call::__new(&mut host);
    assert!(matches!(
        sdk_call.fetch(&FetchRequest::get("ftp://example.com/x")),
        Err(HttpError::InvalidUrl(_))
    ));
    assert!(sdk_call.set_summary("", None).is_err());
}

/// A switchboard: `0` blind transfer, `8` bridged transfer with a summary, `7`
/// sends DTMF, `9` tries a second transfer at once; a failed transfer is
/// announced and retried on the next key.
#[derive(Default)]
struct Switchboard {
    failures: Vec<TransferFailure>,
    ended: Option<EndReason>,
}

impl Plugin for Switchboard {
    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        match digit {
            '0' => call.transfer("frontdesk", TransferOptions::blind())?,
            '8' => call.transfer(
                "sip:desk@pbx.example.com",
                TransferOptions::bridged().summary("A caller from the echo line."),
            )?,
            '7' => call.send_dtmf("12ab#")?,
            '9' => {
                call.transfer("frontdesk", TransferOptions::blind())?;
                call.transfer("tel:+918000000002", TransferOptions::blind())?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_transfer_failed(&mut self, call: &mut Call, failure: &TransferFailure) -> Result {
        self.failures.push(failure.clone());
        call.say("The transfer did not go through.")?;
        Ok(())
    }

    fn on_call_ended(&mut self, _call: &mut Call, reason: EndReason) -> Result {
        self.ended = Some(reason);
        Ok(())
    }
}

#[test]
fn transfers_are_recorded_and_one_at_a_time_until_a_failure_arrives() {
    let mut call = TestCall::<Switchboard>::new();
    call.dtmf('0').unwrap();
    assert_eq!(
        call.transfers(),
        vec![("frontdesk".to_string(), TransferOptions::blind())]
    );
    assert_eq!(call.host().pending_transfer(), Some("frontdesk"));
    let err = call.dtmf('8').unwrap_err();
    assert!(err.message().contains("already pending"), "{err:?}");
    assert_eq!(call.transfers().len(), 1);

    call.fail_transfer(Some(486), "busy here").unwrap();
    assert_eq!(
        call.plugin().failures,
        vec![TransferFailure {
            target: "frontdesk".into(),
            status: Some(486),
            reason: "busy here".into(),
        }]
    );
    assert_eq!(
        call.last_said().as_deref(),
        Some("The transfer did not go through.")
    );
    assert_eq!(call.host().pending_transfer(), None);
    assert!(
        call.fail_transfer(None, "again").is_err(),
        "nothing pending"
    );

    call.dtmf('8').unwrap();
    let (target, options) = call.transfers().pop().unwrap();
    assert_eq!(target, "sip:desk@pbx.example.com");
    assert_eq!(options.mode, TransferMode::Bridged);
    assert_eq!(
        options.summary.as_deref(),
        Some("A caller from the echo line.")
    );
    call.complete_transfer().unwrap();
    assert_eq!(call.plugin().ended, Some(EndReason::Transferred));
    assert!(call.complete_transfer().is_err(), "nothing pending");
}

#[test]
fn a_second_transfer_in_one_event_is_refused() {
    let mut call = TestCall::<Switchboard>::new();
    let err = call.dtmf('9').unwrap_err();
    assert!(err.message().contains("already pending"), "{err:?}");
    assert_eq!(call.transfers().len(), 1);
}

#[test]
fn transfer_shape_is_checked_like_the_host_does() {
    let mut host = vaani_plugin_sdk::testing::MockHost::default();
    let mut call = Call::__new(&mut host);
    for target in ["", "front desk", "desk\n"] {
        assert!(
            call.transfer(target, TransferOptions::blind()).is_err(),
            "{target:?}"
        );
    }
    assert!(
        call.transfer("x".repeat(257), TransferOptions::blind())
            .is_err()
    );
    assert!(
        call.transfer("desk", TransferOptions::blind().summary("hi"))
            .is_err(),
        "a summary is for bridged transfers"
    );
    assert!(
        call.transfer("desk", TransferOptions::bridged().summary(" "))
            .is_err()
    );
    assert!(
        call.transfer("desk", TransferOptions::bridged().summary("s".repeat(2049)))
            .is_err()
    );
    assert!(
        call.transfer("x".repeat(256), TransferOptions::bridged())
            .is_ok()
    );
    assert_eq!(host.actions().len(), 1);
}

#[test]
fn send_dtmf_is_validated_and_upper_cased() {
    let mut call = TestCall::<Switchboard>::new();
    call.dtmf('7').unwrap();
    assert_eq!(call.dtmf_sent(), vec!["12AB#"]);
    assert_eq!(call.actions(), &[MockAction::SendDtmf("12AB#".into())]);

    let mut host = vaani_plugin_sdk::testing::MockHost::default();
    let mut sdk_call = Call::__new(&mut host);
    assert!(sdk_call.send_dtmf("").is_err());
    assert!(sdk_call.send_dtmf("1".repeat(33)).is_err());
    assert!(sdk_call.send_dtmf("12e").is_err());
    assert!(sdk_call.send_dtmf("1".repeat(32)).is_ok());
    assert!(sdk_call.send_dtmf("*#0D").is_ok());
    assert_eq!(host.actions().len(), 2);
}
