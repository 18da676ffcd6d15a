//! Per-turn latency: when the caller stops speaking, how long until the first RTP packet of
//! the agent's reply, and where that time went.
//!
//! [`TurnRecorder`] is sans-IO: every input carries the instant it happened, so tests drive it
//! with made-up instants. The call task feeds it from its media events, speech jobs and plugin
//! actions (see `call_meter`).
//!
//! A turn starts when caller speech ends (the VAD's end of a segment, as seen by the call task)
//! and collects marks in pipeline order:
//!
//! 1. **transcript**: the final transcript of the turn's utterance is ready;
//! 2. **plugin**: the plugin's first `say` after that transcript (after the end of speech when
//!    speech-to-text is off);
//! 3. **llm first token** (optional): the first token of an LLM reply, measured from the LLM
//!    request when [`TurnRecorder::llm_request_started`] was called, else from the transcript;
//! 4. **tts first audio**: the first synthesized audio of the reply (the playback of that
//!    first `say`);
//! 5. **first rtp**: the media engine sent the first packet of that playback.
//!
//! Stage durations are differences between consecutive marks, each mark taken in whole
//! milliseconds after the end of speech, so `total = transcript + plugin + tts_first_audio +
//! first_rtp` exactly when every mark is present. `server_added` is `total` minus engine compute
//! (speech-to-text processing, LLM time to first token, synthesis of the reply's first audio):
//! the time vaani itself added (queues, plugin, pacing).
//!
//! Rules that keep overlapping speech from producing garbage:
//! - A new end of caller speech closes the open turn. A turn closed before its reply reached
//!   the wire is `superseded`; marks that arrive for it later are dropped, never credited to
//!   the next turn. Barge-in needs no rule of its own: a reply cut before its first packet
//!   simply never gets the first-rtp mark.
//! - A transcript counts only for the utterance that ended the open turn (matched by its end
//!   in media time); an empty or failed transcript closes the turn (no reply is expected).
//! - Only the first playback queued in the turn is the reply: later `say`s in the same turn
//!   are the rest of the answer, not a new mark.
//! - A turn that got a reply on the wire is complete and closes at once.
//! - Turns without a reply are kept, with the missing marks as `None`.

use std::time::{Duration, Instant};

/// Most turns kept for one call; later turns are counted in [`TurnRecorder::dropped`].
pub const MAX_TURNS_PER_CALL: usize = 1000;

/// Longest caller text kept with a turn, in characters (whisper can loop on a phrase).
pub const CALLER_TEXT_LIMIT: usize = 200;

/// The latency of one finished turn. Durations are whole milliseconds; `None` when the stage
/// never happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnTiming {
    /// 0-based, in the order the caller's speech ended.
    pub index: u32,
    /// Media time (ms since answer) at which the caller's speech ended.
    pub speech_end_media_ms: u32,
    /// The caller's final transcript, truncated to [`CALLER_TEXT_LIMIT`] characters.
    pub caller_text: Option<String>,
    /// End of speech → transcript ready.
    pub transcript_ms: Option<u32>,
    /// Transcript (or end of speech without speech-to-text) → the plugin's first `say`.
    pub plugin_ms: Option<u32>,
    /// LLM request (or transcript, or end of speech) → first LLM token.
    pub llm_first_token_ms: Option<u32>,
    /// First `say` → its first synthesized audio.
    pub tts_first_audio_ms: Option<u32>,
    /// First synthesized audio → first RTP packet of the reply.
    pub first_rtp_ms: Option<u32>,
    /// End of speech → first RTP packet of the reply.
    pub total_ms: Option<u32>,
    /// `total_ms` minus engine compute.
    pub server_added_ms: Option<u32>,
    /// Speech-to-text processing time of the turn's utterance.
    pub stt_processing_ms: Option<u32>,
    /// Synthesis time of the reply's first audio.
    pub tts_synthesis_ms: Option<u32>,
    /// Closed by new caller speech before the reply reached the wire.
    pub superseded: bool,
}

/// A turn still collecting marks.
#[derive(Debug)]
struct OpenTurn {
    index: u32,
    speech_end: Instant,
    speech_end_media_ms: u32,
    /// End (media time) of the utterance sent to speech-to-text for this turn.
    utterance_end_ms: Option<u32>,
    /// Whether the plugin mark must wait for a transcript.
    awaiting_transcript: bool,
    transcript_at: Option<Instant>,
    caller_text: Option<String>,
    stt_processing: Option<Duration>,
    plugin_at: Option<Instant>,
    reply_playback: Option<u64>,
    llm_request_at: Option<Instant>,
    llm_first_token_at: Option<Instant>,
    tts_audio_at: Option<Instant>,
    tts_synthesis: Option<Duration>,
    first_rtp_at: Option<Instant>,
}

impl OpenTurn {
    /// Whether a reply may be marked now (the transcript came, or none is expected).
    fn ready_for_reply(&self) -> bool {
        !self.awaiting_transcript || self.transcript_at.is_some()
    }

    fn close(self, superseded: bool) -> TurnTiming {
        let start = self.speech_end;
        let at = |mark: Option<Instant>| mark.map(|t| millis(t.saturating_duration_since(start)));
        let transcript = at(self.transcript_at);
        let plugin = at(self.plugin_at);
        let tts_audio = at(self.tts_audio_at);
        let first_rtp = at(self.first_rtp_at);
        let since = |later: Option<u32>, earlier: Option<u32>| {
            later.zip(earlier).map(|(l, e)| l.saturating_sub(e))
        };
        let plugin_from = if self.awaiting_transcript {
            transcript
        } else {
            Some(0)
        };
        let llm_from = self
            .llm_request_at
            .or(self.transcript_at)
            .unwrap_or(self.speech_end);
        let llm_first_token_ms = self
            .llm_first_token_at
            .map(|t| millis(t.saturating_duration_since(llm_from)));
        let stt_processing_ms = self.stt_processing.map(millis);
        let tts_synthesis_ms = self.tts_synthesis.map(millis);
        let total_ms = first_rtp;
        let engine_ms = stt_processing_ms.unwrap_or(0)
            + llm_first_token_ms.unwrap_or(0)
            + tts_synthesis_ms.unwrap_or(0);
        TurnTiming {
            index: self.index,
            speech_end_media_ms: self.speech_end_media_ms,
            caller_text: self.caller_text,
            transcript_ms: transcript,
            plugin_ms: since(plugin, plugin_from),
            llm_first_token_ms,
            tts_first_audio_ms: since(tts_audio, plugin),
            first_rtp_ms: since(first_rtp, tts_audio),
            total_ms,
            server_added_ms: total_ms.map(|total| total.saturating_sub(engine_ms)),
            stt_processing_ms,
            tts_synthesis_ms,
            superseded: superseded && self.first_rtp_at.is_none(),
        }
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Keeps `text` to [`CALLER_TEXT_LIMIT`] characters, marking a cut with `…`.
fn truncate_text(text: &str) -> String {
    match text.char_indices().nth(CALLER_TEXT_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Records the turns of one call (see the module docs for the rules).
#[derive(Debug)]
pub struct TurnRecorder {
    /// Whether caller speech goes to speech-to-text (then a reply waits for the transcript).
    transcripts_expected: bool,
    open: Option<OpenTurn>,
    closed: Vec<TurnTiming>,
    /// How many closed turns [`TurnRecorder::take_newly_closed`] has handed out.
    reported: usize,
    next_index: u32,
    dropped: u32,
}

impl TurnRecorder {
    /// A recorder for a call whose caller speech is (or is not) transcribed.
    pub fn new(transcripts_expected: bool) -> Self {
        Self {
            transcripts_expected,
            open: None,
            closed: Vec::new(),
            reported: 0,
            next_index: 0,
            dropped: 0,
        }
    }

    /// Caller speech ended at media time `speech_end_media_ms`, seen by the call at `now`:
    /// closes the open turn (superseded unless its reply is on the wire) and opens a new one.
    pub fn speech_ended(&mut self, now: Instant, speech_end_media_ms: u32) {
        self.close_open(true);
        if self.closed.len() >= MAX_TURNS_PER_CALL {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.open = Some(OpenTurn {
            index: self.next_index,
            speech_end: now,
            speech_end_media_ms,
            utterance_end_ms: None,
            awaiting_transcript: self.transcripts_expected,
            transcript_at: None,
            caller_text: None,
            stt_processing: None,
            plugin_at: None,
            reply_playback: None,
            llm_request_at: None,
            llm_first_token_at: None,
            tts_audio_at: None,
            tts_synthesis: None,
            first_rtp_at: None,
        });
        self.next_index = self.next_index.saturating_add(1);
    }

    /// The last utterance of a speech segment (ending at media time `utterance_end_ms`) went to
    /// speech-to-text. Belongs to the open turn if that turn has none yet; otherwise the end of
    /// speech was not reported (a dropped event) and this opens the turn itself.
    pub fn utterance_queued(&mut self, now: Instant, utterance_end_ms: u32) {
        let attach = self.open.as_ref().is_some_and(|turn| {
            turn.utterance_end_ms.is_none()
                && turn.transcript_at.is_none()
                && turn.plugin_at.is_none()
        });
        if !attach {
            self.speech_ended(now, utterance_end_ms);
        }
        if let Some(turn) = &mut self.open {
            turn.utterance_end_ms = Some(utterance_end_ms);
            turn.awaiting_transcript = true;
        }
    }

    /// The transcript of the utterance ending at `utterance_end_ms` is ready; `processing` is
    /// the engine's own time. An empty text closes the turn (the plugin is not told).
    pub fn transcript_ready(
        &mut self,
        now: Instant,
        utterance_end_ms: u32,
        text: &str,
        processing: Duration,
    ) {
        let Some(turn) = self.open_for_utterance(utterance_end_ms) else {
            return;
        };
        turn.transcript_at = Some(now);
        turn.stt_processing = Some(processing);
        turn.caller_text = Some(truncate_text(text));
        if text.is_empty() {
            self.close_open(false);
        }
    }

    /// Speech-to-text failed for the utterance ending at `utterance_end_ms`: the turn closes
    /// with its transcript mark (the time the failure was known) and no text.
    pub fn transcript_failed(&mut self, now: Instant, utterance_end_ms: u32) {
        let Some(turn) = self.open_for_utterance(utterance_end_ms) else {
            return;
        };
        turn.transcript_at = Some(now);
        self.close_open(false);
    }

    /// The plugin queued speech (playback `playback`); the first one after the transcript is
    /// the turn's reply.
    pub fn reply_queued(&mut self, now: Instant, playback: u64) {
        if let Some(turn) = &mut self.open
            && turn.plugin_at.is_none()
            && turn.ready_for_reply()
        {
            turn.plugin_at = Some(now);
            turn.reply_playback = Some(playback);
        }
    }

    /// An LLM request for this turn's reply went out (optional; without it the LLM time to
    /// first token is measured from the transcript).
    pub fn llm_request_started(&mut self, now: Instant) {
        if let Some(turn) = &mut self.open
            && turn.ready_for_reply()
            && turn.llm_request_at.is_none()
            && turn.llm_first_token_at.is_none()
        {
            turn.llm_request_at = Some(now);
        }
    }

    /// The first token of the LLM reply arrived.
    pub fn llm_first_token(&mut self, now: Instant) {
        if let Some(turn) = &mut self.open
            && turn.ready_for_reply()
            && turn.llm_first_token_at.is_none()
        {
            turn.llm_first_token_at = Some(now);
        }
    }

    /// Synthesized audio for `playback` is ready; `synthesis` is the engine's time for it.
    pub fn tts_audio_ready(&mut self, now: Instant, playback: u64, synthesis: Duration) {
        if let Some(turn) = &mut self.open
            && turn.reply_playback == Some(playback)
            && turn.tts_audio_at.is_none()
        {
            turn.tts_audio_at = Some(now);
            turn.tts_synthesis = Some(synthesis);
        }
    }

    /// The media engine sent the first packet of `playback`; for the reply this completes the
    /// turn.
    pub fn playback_started(&mut self, now: Instant, playback: u64) {
        if let Some(turn) = &mut self.open
            && turn.reply_playback == Some(playback)
            && turn.first_rtp_at.is_none()
        {
            turn.first_rtp_at = Some(now);
            self.close_open(false);
        }
    }

    /// Turns closed since the last call (each is handed out once), e.g. for metrics.
    pub fn take_newly_closed(&mut self) -> &[TurnTiming] {
        let start = self.reported;
        self.reported = self.closed.len();
        &self.closed[start..]
    }

    /// Turns not recorded because the call passed [`MAX_TURNS_PER_CALL`].
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Closes the open turn, as when the call ends (not superseded).
    pub fn close(&mut self) {
        self.close_open(false);
    }

    /// Closes the open turn (the call ended) and returns every turn, in order.
    pub fn finish(&mut self) -> Vec<TurnTiming> {
        self.close();
        self.reported = 0;
        std::mem::take(&mut self.closed)
    }

    /// The turns closed so far (the open one excluded).
    #[cfg(test)]
    fn closed(&self) -> &[TurnTiming] {
        &self.closed
    }

    fn open_for_utterance(&mut self, utterance_end_ms: u32) -> Option<&mut OpenTurn> {
        self.open.as_mut().filter(|turn| {
            turn.utterance_end_ms == Some(utterance_end_ms) && turn.transcript_at.is_none()
        })
    }

    fn close_open(&mut self, superseded: bool) {
        if let Some(turn) = self.open.take() {
            self.closed.push(turn.close(superseded));
        }
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[u32], p: u32) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100);
    let index = usize::try_from(rank.saturating_sub(1)).unwrap_or(0);
    sorted.get(index.min(sorted.len() - 1)).copied()
}

/// Per-call latency summary: the distribution of each stage over the call's turns.
pub fn latency_summary(turns: &[TurnTiming]) -> serde_json::Value {
    let stage = |pick: fn(&TurnTiming) -> Option<u32>| {
        let mut values: Vec<u32> = turns.iter().filter_map(pick).collect();
        values.sort_unstable();
        let mean = if values.is_empty() {
            None
        } else {
            Some(values.iter().map(|&v| u64::from(v)).sum::<u64>() / values.len() as u64)
        };
        serde_json::json!({
            "count": values.len(),
            "p50_ms": percentile(&values, 50),
            "p95_ms": percentile(&values, 95),
            "max_ms": values.last(),
            "mean_ms": mean,
        })
    };
    let total = stage(|t| t.total_ms);
    serde_json::json!({
        "turns": turns.len(),
        "replied_turns": total["count"],
        "superseded_turns": turns.iter().filter(|t| t.superseded).count(),
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "max_ms": total["max_ms"],
        "mean_ms": total["mean_ms"],
        "stages": {
            "transcript": stage(|t| t.transcript_ms),
            "plugin": stage(|t| t.plugin_ms),
            "llm_first_token": stage(|t| t.llm_first_token_ms),
            "tts_first_audio": stage(|t| t.tts_first_audio_ms),
            "first_rtp": stage(|t| t.first_rtp_ms),
            "total": total,
            "server_added": stage(|t| t.server_added_ms),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instants at fixed offsets from one base, in milliseconds.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Clock(Instant::now())
        }
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn a_full_turn_has_every_stage_and_they_add_up() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(1000), 5400);
        turns.utterance_queued(clock.at(1001), 5700);
        turns.transcript_ready(clock.at(1420), 5700, "book a table", ms(380));
        turns.reply_queued(clock.at(1423), 7);
        turns.tts_audio_ready(clock.at(1520), 7, ms(90));
        turns.playback_started(clock.at(1537), 7);
        let done = turns.finish();
        assert_eq!(
            done,
            [TurnTiming {
                index: 0,
                speech_end_media_ms: 5400,
                caller_text: Some("book a table".to_owned()),
                transcript_ms: Some(420),
                plugin_ms: Some(3),
                llm_first_token_ms: None,
                tts_first_audio_ms: Some(97),
                first_rtp_ms: Some(17),
                total_ms: Some(537),
                server_added_ms: Some(537 - 380 - 90),
                stt_processing_ms: Some(380),
                tts_synthesis_ms: Some(90),
                superseded: false,
            }]
        );
        let t = &done[0];
        assert_eq!(
            t.total_ms,
            Some(
                t.transcript_ms.unwrap()
                    + t.plugin_ms.unwrap()
                    + t.tts_first_audio_ms.unwrap()
                    + t.first_rtp_ms.unwrap()
            )
        );
    }

    #[test]
    fn sub_millisecond_marks_still_add_up() {
        let base = Instant::now();
        let at = |us: u64| base + Duration::from_micros(us);
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(at(0), 0);
        turns.utterance_queued(at(10), 100);
        turns.transcript_ready(at(999), 100, "hi", ms(0));
        turns.reply_queued(at(1_998), 1);
        turns.tts_audio_ready(at(2_997), 1, ms(0));
        turns.playback_started(at(3_996), 1);
        let t = &turns.finish()[0];
        let sum = t.transcript_ms.unwrap()
            + t.plugin_ms.unwrap()
            + t.tts_first_audio_ms.unwrap()
            + t.first_rtp_ms.unwrap();
        assert_eq!(t.total_ms, Some(sum));
        assert_eq!(t.total_ms, Some(3));
    }

    #[test]
    fn the_llm_mark_is_optional_and_counts_as_engine_time() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 100);
        turns.utterance_queued(clock.at(0), 300);
        turns.transcript_ready(clock.at(300), 300, "what is open", ms(250));
        // Before the transcript nothing LLM-related counts; after it, from the request.
        turns.llm_request_started(clock.at(310));
        turns.llm_first_token(clock.at(710));
        turns.reply_queued(clock.at(720), 3);
        turns.tts_audio_ready(clock.at(800), 3, ms(60));
        turns.playback_started(clock.at(820), 3);
        let t = &turns.finish()[0];
        assert_eq!(t.llm_first_token_ms, Some(400));
        assert_eq!(t.plugin_ms, Some(420));
        assert_eq!(t.total_ms, Some(820));
        assert_eq!(t.server_added_ms, Some(820 - 250 - 400 - 60));

        // Without a request mark the time to first token runs from the transcript.
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 100);
        turns.utterance_queued(clock.at(0), 300);
        turns.llm_first_token(clock.at(100));
        turns.transcript_ready(clock.at(300), 300, "hello", ms(250));
        turns.llm_first_token(clock.at(500));
        let t = &turns.finish()[0];
        assert_eq!(t.llm_first_token_ms, Some(200));
    }

    #[test]
    fn a_turn_without_a_reply_keeps_null_marks() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 100);
        turns.utterance_queued(clock.at(1), 400);
        turns.transcript_ready(clock.at(350), 400, "uh huh", ms(300));
        let t = &turns.finish()[0];
        assert_eq!(t.transcript_ms, Some(350));
        assert_eq!(t.caller_text.as_deref(), Some("uh huh"));
        assert_eq!(
            (
                t.plugin_ms,
                t.tts_first_audio_ms,
                t.first_rtp_ms,
                t.total_ms
            ),
            (None, None, None, None)
        );
        assert_eq!(t.server_added_ms, None);
        assert!(!t.superseded);
    }

    #[test]
    fn a_say_before_the_transcript_is_not_the_reply() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 100);
        turns.utterance_queued(clock.at(0), 300);
        // A reply to the previous turn (or a prompt) lands while this one is transcribed.
        turns.reply_queued(clock.at(50), 1);
        turns.tts_audio_ready(clock.at(80), 1, ms(30));
        turns.playback_started(clock.at(90), 1);
        turns.transcript_ready(clock.at(400), 300, "yes", ms(350));
        turns.reply_queued(clock.at(401), 2);
        turns.tts_audio_ready(clock.at(450), 2, ms(49));
        turns.playback_started(clock.at(470), 2);
        let t = &turns.finish()[0];
        assert_eq!(t.plugin_ms, Some(1));
        assert_eq!(t.total_ms, Some(470));
    }

    #[test]
    fn new_speech_supersedes_an_unanswered_turn_and_late_marks_are_dropped() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 1000);
        turns.utterance_queued(clock.at(0), 1200);
        turns.transcript_ready(clock.at(300), 1200, "hello", ms(280));
        turns.reply_queued(clock.at(301), 1);
        // The caller talks again before the reply is heard.
        turns.speech_ended(clock.at(900), 2500);
        turns.utterance_queued(clock.at(900), 2700);
        // The first turn's reply reaches the wire now: not credited to either turn.
        turns.tts_audio_ready(clock.at(950), 1, ms(600));
        turns.playback_started(clock.at(960), 1);
        // A late transcript for the first utterance is ignored too.
        turns.transcript_ready(clock.at(990), 1200, "hello again", ms(10));
        turns.transcript_ready(clock.at(1200), 2700, "are you there", ms(290));
        turns.reply_queued(clock.at(1201), 2);
        turns.tts_audio_ready(clock.at(1300), 2, ms(99));
        turns.playback_started(clock.at(1320), 2);
        let done = turns.finish();
        assert_eq!(done.len(), 2);
        assert!(done[0].superseded);
        assert_eq!(done[0].index, 0);
        assert_eq!(done[0].caller_text.as_deref(), Some("hello"));
        assert_eq!(done[0].plugin_ms, Some(1));
        assert_eq!(
            (
                done[0].tts_first_audio_ms,
                done[0].first_rtp_ms,
                done[0].total_ms
            ),
            (None, None, None)
        );
        assert!(!done[1].superseded);
        assert_eq!(done[1].index, 1);
        assert_eq!(done[1].caller_text.as_deref(), Some("are you there"));
        assert_eq!(done[1].transcript_ms, Some(300));
        assert_eq!(done[1].total_ms, Some(420));
    }

    #[test]
    fn a_reply_cut_by_barge_in_before_its_first_packet_has_no_rtp_mark() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 1000);
        turns.utterance_queued(clock.at(0), 1200);
        turns.transcript_ready(clock.at(300), 1200, "hi", ms(280));
        turns.reply_queued(clock.at(301), 1);
        turns.tts_audio_ready(clock.at(400), 1, ms(99));
        // Barge-in flushed it: no PlaybackStarted. A second say is not the reply.
        turns.reply_queued(clock.at(500), 2);
        turns.playback_started(clock.at(520), 2);
        let t = &turns.finish()[0];
        assert_eq!(t.tts_first_audio_ms, Some(99));
        assert_eq!((t.first_rtp_ms, t.total_ms), (None, None));
        assert!(
            !t.superseded,
            "closed by the end of the call, not by speech"
        );
    }

    #[test]
    fn an_answered_turn_is_not_superseded_by_the_next_speech() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(false);
        turns.speech_ended(clock.at(0), 1000);
        // Without speech-to-text the reply may follow the end of speech directly.
        turns.reply_queued(clock.at(5), 1);
        turns.tts_audio_ready(clock.at(60), 1, ms(50));
        turns.playback_started(clock.at(75), 1);
        assert_eq!(turns.take_newly_closed().len(), 1);
        assert!(turns.take_newly_closed().is_empty(), "handed out once");
        turns.speech_ended(clock.at(3000), 4000);
        let done = turns.finish();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].plugin_ms, Some(5));
        assert_eq!(done[0].total_ms, Some(75));
        assert_eq!(done[0].transcript_ms, None);
        assert!(!done[0].superseded);
        assert_eq!(done[1].speech_end_media_ms, 4000);
    }

    #[test]
    fn empty_or_failed_transcripts_close_the_turn() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 1000);
        turns.utterance_queued(clock.at(0), 1100);
        turns.transcript_ready(clock.at(200), 1100, "", ms(150));
        // A prompt said much later is not a reply to noise.
        turns.reply_queued(clock.at(8000), 1);
        turns.speech_ended(clock.at(9000), 9000);
        turns.utterance_queued(clock.at(9000), 9100);
        turns.transcript_failed(clock.at(9100), 9100);
        turns.reply_queued(clock.at(9200), 2);
        let done = turns.finish();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].caller_text.as_deref(), Some(""));
        assert_eq!(done[0].transcript_ms, Some(200));
        assert_eq!(done[0].plugin_ms, None);
        assert_eq!(done[1].transcript_ms, Some(100));
        assert_eq!(done[1].caller_text, None);
        assert_eq!(done[1].plugin_ms, None);
    }

    #[test]
    fn an_utterance_without_a_reported_end_of_speech_opens_its_own_turn() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 1000);
        turns.utterance_queued(clock.at(0), 1100);
        // The next SpeechStopped was dropped by a full event channel: the utterance opens it.
        turns.utterance_queued(clock.at(5000), 5100);
        turns.transcript_ready(clock.at(5300), 5100, "second", ms(250));
        let done = turns.finish();
        assert_eq!(done.len(), 2);
        assert!(done[0].superseded);
        assert_eq!(done[1].speech_end_media_ms, 5100);
        assert_eq!(done[1].transcript_ms, Some(300));
    }

    #[test]
    fn long_caller_text_is_truncated_on_a_character_boundary() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(true);
        turns.speech_ended(clock.at(0), 0);
        turns.utterance_queued(clock.at(0), 10);
        let text = "नमस्ते ".repeat(100);
        turns.transcript_ready(clock.at(1), 10, &text, ms(1));
        let kept = turns.finish()[0].caller_text.clone().unwrap();
        assert_eq!(kept.chars().count(), CALLER_TEXT_LIMIT + 1);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn turns_beyond_the_limit_are_counted_not_kept() {
        let clock = Clock::new();
        let mut turns = TurnRecorder::new(false);
        for i in 0..(MAX_TURNS_PER_CALL as u64 + 5) {
            turns.speech_ended(clock.at(i), i as u32);
        }
        assert_eq!(turns.closed().len(), MAX_TURNS_PER_CALL);
        assert_eq!(turns.finish().len(), MAX_TURNS_PER_CALL);
        assert_eq!(turns.dropped(), 5);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let values: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&values, 50), Some(5));
        assert_eq!(percentile(&values, 95), Some(10));
        assert_eq!(percentile(&values, 0), Some(1));
        assert_eq!(percentile(&values, 100), Some(10));
    }

    #[test]
    fn the_summary_covers_replied_turns() {
        let turns = vec![
            TurnTiming {
                total_ms: Some(500),
                transcript_ms: Some(300),
                server_added_ms: Some(40),
                ..TurnTiming::default()
            },
            TurnTiming {
                index: 1,
                total_ms: Some(900),
                transcript_ms: Some(600),
                server_added_ms: Some(60),
                ..TurnTiming::default()
            },
            TurnTiming {
                index: 2,
                transcript_ms: Some(100),
                superseded: true,
                ..TurnTiming::default()
            },
        ];
        let summary = latency_summary(&turns);
        assert_eq!(summary["turns"], 3);
        assert_eq!(summary["replied_turns"], 2);
        assert_eq!(summary["superseded_turns"], 1);
        assert_eq!(summary["p50_ms"], 500);
        assert_eq!(summary["p95_ms"], 900);
        assert_eq!(summary["max_ms"], 900);
        assert_eq!(summary["mean_ms"], 700);
        assert_eq!(summary["stages"]["transcript"]["count"], 3);
        assert_eq!(summary["stages"]["transcript"]["p50_ms"], 300);
        assert_eq!(summary["stages"]["server_added"]["max_ms"], 60);
        assert_eq!(
            summary["stages"]["plugin"]["p50_ms"],
            serde_json::Value::Null
        );

        let empty = latency_summary(&[]);
        assert_eq!(empty["turns"], 0);
        assert_eq!(empty["p50_ms"], serde_json::Value::Null);
    }
}
