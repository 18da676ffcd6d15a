//! The vaani echo line: greets, reads back each key, says goodbye on `#`, echoes
//! final transcripts, and stops playback when the caller starts speaking
//! (barge-in demo). Useful for checking a trunk end to end.

use vaani_plugin_sdk::*;

/// What the caller hears when the call is answered.
pub const GREETING: &str =
    "Hello, this is the vaani echo line. Press some keys, then hash to hang up.";
/// What the caller hears before the echo line hangs up.
pub const GOODBYE: &str = "Goodbye.";

/// The echo plugin. Stateless apart from a key counter used in logs.
#[derive(Default)]
pub struct Echo {
    keys_pressed: u32,
}

impl Plugin for Echo {
    fn name() -> &'static str {
        "echo"
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn on_call_started(&mut self, call: &mut Call, _ctx: &CallerContext) -> Result {
        call.say(GREETING)?;
        Ok(())
    }

    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        if digit == '#' {
            call.log(
                LogLevel::Info,
                format!("caller pressed {} keys", self.keys_pressed),
            );
            call.say(GOODBYE)?;
            call.hangup();
        } else {
            self.keys_pressed += 1;
            call.say(format!("You pressed {digit}"))?;
        }
        Ok(())
    }

    fn on_speech_started(&mut self, call: &mut Call, _media_ms: u32) -> Result {
        call.stop_playback(None);
        Ok(())
    }

    fn on_transcript(&mut self, call: &mut Call, utterance: &Utterance, is_final: bool) -> Result {
        let text = utterance.text.trim();
        if is_final && !text.is_empty() {
            call.say(format!("You said: {text}"))?;
        }
        Ok(())
    }
}

export_plugin!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use vaani_plugin_sdk::testing::{MockAction, TestCall};

    #[test]
    fn greets_reads_back_keys_and_hangs_up_on_hash() {
        let mut call = TestCall::<Echo>::new();
        call.start().unwrap();
        assert_eq!(call.said(), vec![GREETING]);
        call.dtmf('5').unwrap();
        assert_eq!(call.last_said().as_deref(), Some("You pressed 5"));
        assert!(!call.hung_up());
        call.dtmf('#').unwrap();
        assert_eq!(call.last_said().as_deref(), Some(GOODBYE));
        assert!(call.hung_up());
    }

    #[test]
    fn speech_stops_playback() {
        let mut call = TestCall::<Echo>::new();
        call.send(Event::SpeechStarted { media_ms: 1200 }).unwrap();
        assert_eq!(call.actions(), &[MockAction::StopPlayback(None)]);
    }

    #[test]
    fn echoes_final_transcripts_only() {
        let mut call = TestCall::<Echo>::new();
        call.send(Event::TranscriptPartial(Utterance {
            text: "hel".into(),
            ..Utterance::default()
        }))
        .unwrap();
        assert!(call.said().is_empty());
        call.transcript("hello there").unwrap();
        assert_eq!(call.said(), vec!["You said: hello there"]);
    }
}
