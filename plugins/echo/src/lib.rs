//! The vaani echo line: greets, reads back each key, says goodbye on `#`, echoes
//! final transcripts, and stops playback when the caller starts speaking
//! (barge-in demo). Useful for checking a trunk end to end.
//!
//! Three keys demonstrate call control (world 0.3.0): `0` transfers the caller
//! blind to the tenant's `frontdesk` transfer target, `8` transfers bridged
//! (the person who answers hears [`BRIDGED_SUMMARY`] first), and `7` is read
//! back, then sends the keys `123` to the far end. A transfer that does not go
//! through is announced and the call goes on.

use vaani_plugin_sdk::*;

/// What the caller hears when the call is answered.
pub const GREETING: &str =
    "Hello, this is the vaani echo line. Press some keys, then hash to hang up.";
/// What the caller hears before the echo line hangs up.
pub const GOODBYE: &str = "Goodbye.";
/// The tenant's transfer target for keys `0` and `8`.
pub const FRONT_DESK: &str = "frontdesk";
/// What the caller hears before a blind transfer (key `0`).
pub const TRANSFERRING: &str = "Transferring you to the front desk.";
/// What the person who answers a bridged transfer (key `8`) hears first.
pub const BRIDGED_SUMMARY: &str = "A caller from the echo line.";
/// The keys sent to the far end on key `7`.
pub const SENT_KEYS: &str = "123";
/// What the caller hears after the keys were sent.
pub const SENT: &str = "Sent one two three";
/// What the caller hears when a transfer did not happen.
pub const TRANSFER_FAILED: &str = "The transfer did not go through.";

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
            return Ok(());
        }
        self.keys_pressed += 1;
        match digit {
            '0' => {
                call.say(TRANSFERRING)?;
                call.transfer(FRONT_DESK, TransferOptions::blind())?;
            }
            '8' => {
                call.transfer(
                    FRONT_DESK,
                    TransferOptions::bridged().summary(BRIDGED_SUMMARY),
                )?;
            }
            '7' => {
                // Read back like every other key, then demonstrate sending keys.
                call.say(format!("You pressed {digit}"))?;
                call.send_dtmf(SENT_KEYS)?;
                call.say(SENT)?;
            }
            _ => {
                call.say(format!("You pressed {digit}"))?;
            }
        }
        Ok(())
    }

    fn on_transfer_failed(&mut self, call: &mut Call, failure: &TransferFailure) -> Result {
        call.log(
            LogLevel::Info,
            format!(
                "transfer to {} failed ({}): {}",
                failure.target,
                failure
                    .status
                    .map_or_else(|| "no status".to_string(), |s| s.to_string()),
                failure.reason
            ),
        );
        call.say(TRANSFER_FAILED)?;
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
    fn zero_announces_then_transfers_blind_to_the_front_desk() {
        let mut call = TestCall::<Echo>::new();
        call.start().unwrap();
        call.take_actions();
        call.dtmf('0').unwrap();
        let actions = call.take_actions();
        assert!(
            matches!(&actions[0], MockAction::Say { text, .. } if text == TRANSFERRING),
            "{actions:?}"
        );
        assert_eq!(
            actions[1],
            MockAction::Transfer {
                target: FRONT_DESK.to_string(),
                options: TransferOptions::blind(),
            }
        );
        assert_eq!(actions.len(), 2);
        assert!(!call.hung_up());
        call.complete_transfer().unwrap();
        assert!(
            call.actions().is_empty(),
            "nothing more to do once transferred"
        );
    }

    #[test]
    fn eight_transfers_bridged_with_a_summary() {
        let mut call = TestCall::<Echo>::new();
        call.dtmf('8').unwrap();
        assert_eq!(
            call.transfers(),
            vec![(
                FRONT_DESK.to_string(),
                TransferOptions::bridged().summary(BRIDGED_SUMMARY)
            )]
        );
        assert!(call.said().is_empty());
    }

    #[test]
    fn a_failed_transfer_is_announced_and_the_call_goes_on() {
        let mut call = TestCall::<Echo>::new();
        call.dtmf('0').unwrap();
        // Still pending: a second transfer is refused (the error is logged by the host).
        assert!(call.dtmf('8').is_err());
        call.fail_transfer(Some(486), "busy here").unwrap();
        assert_eq!(call.last_said().as_deref(), Some(TRANSFER_FAILED));
        assert!(
            call.logs()
                .iter()
                .any(|(_, m)| m == "transfer to frontdesk failed (486): busy here")
        );
        call.dtmf('5').unwrap();
        assert_eq!(call.last_said().as_deref(), Some("You pressed 5"));
        // Once the failure arrived, the caller may try again.
        call.dtmf('8').unwrap();
        assert_eq!(call.transfers().len(), 2);
    }

    #[test]
    fn seven_reads_back_then_sends_one_two_three() {
        let mut call = TestCall::<Echo>::new();
        call.dtmf('7').unwrap();
        let actions = call.take_actions();
        assert!(
            matches!(&actions[0], MockAction::Say { text, .. } if text == "You pressed 7"),
            "{actions:?}"
        );
        assert_eq!(actions[1], MockAction::SendDtmf(SENT_KEYS.to_string()));
        assert!(
            matches!(&actions[2], MockAction::Say { text, .. } if text == SENT),
            "{actions:?}"
        );
        assert_eq!(actions.len(), 3);
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
