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
    call.send(Event::BargeIn(PlaybackId(1))).unwrap();
    call.send(Event::SpeechStarted { media_ms: 10 }).unwrap();
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
