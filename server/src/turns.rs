//! Turn-taking: when the caller has finished their turn.
//!
//! Speech-to-text hands over one transcript per VAD-segmented utterance; a caller's turn may
//! span several (a pause for breath, "my number is … nine eight …"). [`TurnTaker`] joins them
//! and decides when the turn is over: after a silence (from the end of the caller's speech)
//! that is shorter after terminal punctuation and longer while the plugin expects digits or
//! a number. Sans-IO: the call task feeds it events with their time and sleeps until
//! [`TurnTaker::deadline`].

use std::time::{Duration, Instant};

/// Silences that end a caller's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnSettings {
    /// Silence after speech that ends a turn.
    pub end_of_turn: Duration,
    /// Silence that ends a turn whose text ends a sentence (`.`, `?`, `!`).
    pub after_sentence: Duration,
    /// Silence that ends a turn while the plugin expects digits or a number.
    pub expecting_number: Duration,
    /// The VAD hang-over: an utterance reaches the call this long after the caller's last
    /// speech, so that much of the silence has already passed.
    pub vad_hangover: Duration,
}

impl Default for TurnSettings {
    fn default() -> Self {
        TurnSettings {
            end_of_turn: Duration::from_millis(600),
            after_sentence: Duration::from_millis(300),
            expecting_number: Duration::from_millis(1500),
            vad_hangover: Duration::from_millis(500),
        }
    }
}

/// What the plugin said it expects the caller to say next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expecting {
    /// Free speech.
    #[default]
    Speech,
    /// Digits, spoken or keyed.
    Digits,
    /// A number (an amount, a date, a phone number).
    Number,
}

/// One transcribed utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnPart {
    /// Recognised text (not empty).
    pub text: String,
    /// Recogniser confidence, 0 to 1.
    pub confidence: f32,
    /// Media time of the start, ms.
    pub start_ms: u32,
    /// Media time of the end, ms.
    pub end_ms: u32,
}

/// A finished turn: every utterance of it joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The texts joined with spaces.
    pub text: String,
    /// The lowest confidence of the parts.
    pub confidence: f32,
    /// Media time of the first part's start, ms.
    pub start_ms: u32,
    /// Media time of the last part's end, ms.
    pub end_ms: u32,
    /// How many utterances it joined.
    pub parts: usize,
}

/// Joins transcripts into turns and times their end.
#[derive(Debug)]
pub struct TurnTaker {
    settings: TurnSettings,
    expecting: Expecting,
    parts: Vec<TurnPart>,
    speaking: bool,
    /// Utterances handed to speech-to-text whose transcript has not come back.
    transcribing: usize,
    /// When the caller last stopped speaking (estimated from the utterance's arrival).
    speech_ended_at: Option<Instant>,
}

impl TurnTaker {
    /// A turn-taker with no speech yet.
    pub fn new(settings: TurnSettings) -> Self {
        TurnTaker {
            settings,
            expecting: Expecting::Speech,
            parts: Vec::new(),
            speaking: false,
            transcribing: 0,
            speech_ended_at: None,
        }
    }

    /// The plugin says what comes next; applies to the turn in progress too.
    pub fn expect(&mut self, expecting: Expecting) {
        self.expecting = expecting;
    }

    /// The caller started speaking: the turn goes on.
    pub fn speech_started(&mut self) {
        self.speaking = true;
    }

    /// The caller stopped speaking (VAD end, after the hang-over).
    pub fn speech_stopped(&mut self, now: Instant) {
        self.speaking = false;
        self.speech_ended_at = Some(now.checked_sub(self.settings.vad_hangover).unwrap_or(now));
    }

    /// An utterance arrived (at `now`, a hang-over after the speech ended) and went to
    /// speech-to-text.
    pub fn utterance_queued(&mut self, now: Instant) {
        self.transcribing += 1;
        let ended = now.checked_sub(self.settings.vad_hangover).unwrap_or(now);
        self.speech_ended_at = Some(self.speech_ended_at.map_or(ended, |at| at.max(ended)));
    }

    /// A transcript came back; `None` when it was empty or failed.
    pub fn transcribed(&mut self, part: Option<TurnPart>) {
        self.transcribing = self.transcribing.saturating_sub(1);
        if let Some(part) = part.filter(|p| !p.text.trim().is_empty()) {
            self.parts.push(part);
        }
    }

    /// The caller pressed a key or the call moved on otherwise: what was said so far is the
    /// turn, delivered now by [`poll`](Self::poll) if anything was said.
    pub fn interrupt(&mut self) -> Option<Turn> {
        self.take()
    }

    /// When the turn in progress ends if nothing else happens.
    pub fn deadline(&self) -> Option<Instant> {
        if self.speaking || self.transcribing > 0 {
            return None;
        }
        let last = self.parts.last()?;
        let ended = self.speech_ended_at?;
        Some(ended + self.silence_for(&last.text))
    }

    /// The finished turn, if its deadline has passed.
    pub fn poll(&mut self, now: Instant) -> Option<Turn> {
        if self.deadline()? <= now {
            self.take()
        } else {
            None
        }
    }

    fn silence_for(&self, text: &str) -> Duration {
        match self.expecting {
            Expecting::Digits | Expecting::Number => self.settings.expecting_number,
            Expecting::Speech if ends_sentence(text) => self.settings.after_sentence,
            Expecting::Speech => self.settings.end_of_turn,
        }
    }

    fn take(&mut self) -> Option<Turn> {
        if self.parts.is_empty() {
            return None;
        }
        let parts = std::mem::take(&mut self.parts);
        let text = parts
            .iter()
            .map(|p| p.text.trim())
            .collect::<Vec<_>>()
            .join(" ");
        Some(Turn {
            text,
            confidence: parts
                .iter()
                .map(|p| p.confidence)
                .fold(f32::INFINITY, f32::min),
            start_ms: parts[0].start_ms,
            end_ms: parts[parts.len() - 1].end_ms,
            parts: parts.len(),
        })
    }
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', ')'])
        .ends_with(['.', '?', '!'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn part(text: &str, start_ms: u32, end_ms: u32) -> Option<TurnPart> {
        Some(TurnPart {
            text: text.to_owned(),
            confidence: 0.9,
            start_ms,
            end_ms,
        })
    }

    /// One utterance: speech stops at `t0 + 1000` (VAD end at +1500), transcript at +1900.
    fn one_utterance(taker: &mut TurnTaker, t0: Instant, text: &str) {
        taker.speech_started();
        taker.speech_stopped(t0 + ms(1500));
        taker.utterance_queued(t0 + ms(1500));
        assert_eq!(taker.deadline(), None, "nothing transcribed yet");
        taker.transcribed(part(text, 0, 1300));
    }

    #[test]
    fn an_unfinished_sentence_waits_the_end_of_turn_silence() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings {
            vad_hangover: ms(300),
            ..TurnSettings::default()
        });
        one_utterance(&mut taker, t0, "I would like to book");
        // Speech ended at 1500 - 300 = 1200; 600 ms of silence ends the turn at 1800.
        assert_eq!(taker.deadline(), Some(t0 + ms(1800)));
        assert_eq!(taker.poll(t0 + ms(1799)), None);
        let turn = taker.poll(t0 + ms(1800)).unwrap();
        assert_eq!(turn.text, "I would like to book");
        assert_eq!(taker.poll(t0 + ms(5000)), None, "delivered once");
    }

    #[test]
    fn terminal_punctuation_shortens_the_wait() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings {
            vad_hangover: ms(200),
            ..TurnSettings::default()
        });
        one_utterance(&mut taker, t0, "Tomorrow at ten.");
        assert_eq!(taker.deadline(), Some(t0 + ms(1300 + 300)));
        for text in ["Is that right?", "Yes!", "He said \"ok.\"", "(fine.)"] {
            assert!(ends_sentence(text), "{text}");
        }
        for text in ["ten", "well,", "3.5 kg"] {
            assert!(!ends_sentence(text), "{text}");
        }
    }

    #[test]
    fn a_transcript_later_than_the_silence_ends_the_turn_at_once() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings::default());
        one_utterance(&mut taker, t0, "Yes, that's right.");
        // Hang-over 500 > after-sentence 300: the deadline is already behind the utterance.
        let deadline = taker.deadline().unwrap();
        assert!(deadline <= t0 + ms(1500));
        assert!(taker.poll(t0 + ms(1900)).is_some());
    }

    #[test]
    fn expecting_a_number_waits_longer_and_joins_the_pieces() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings {
            vad_hangover: ms(300),
            ..TurnSettings::default()
        });
        taker.expect(Expecting::Number);
        one_utterance(&mut taker, t0, "nine eight four.");
        // 1500 ms from the end of speech (1200).
        assert_eq!(taker.deadline(), Some(t0 + ms(2700)));
        assert_eq!(taker.poll(t0 + ms(2000)), None);
        // The caller goes on before the deadline: the turn continues.
        taker.speech_started();
        assert_eq!(taker.deadline(), None);
        taker.speech_stopped(t0 + ms(3300));
        taker.utterance_queued(t0 + ms(3300));
        taker.transcribed(part("five six seven.", 2100, 3100));
        assert_eq!(taker.deadline(), Some(t0 + ms(3000 + 1500)));
        let turn = taker.poll(t0 + ms(4500)).unwrap();
        assert_eq!(turn.text, "nine eight four. five six seven.");
        assert_eq!((turn.start_ms, turn.end_ms, turn.parts), (0, 3100, 2));
        taker.expect(Expecting::Speech);
        one_utterance(&mut taker, t0 + ms(10_000), "thanks");
        assert_eq!(taker.deadline(), Some(t0 + ms(10_000 + 1200 + 600)));
    }

    #[test]
    fn speech_without_a_transcript_keeps_the_earlier_turn_open_then_ends_it() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings {
            vad_hangover: ms(300),
            ..TurnSettings::default()
        });
        one_utterance(&mut taker, t0, "I want two coffees");
        // A cough: speech, an utterance, an empty transcript.
        taker.speech_started();
        taker.speech_stopped(t0 + ms(2000));
        taker.utterance_queued(t0 + ms(2000));
        taker.transcribed(None);
        // The silence counts from the cough's end (1700).
        assert_eq!(taker.deadline(), Some(t0 + ms(2300)));
        assert_eq!(
            taker.poll(t0 + ms(2300)).unwrap().text,
            "I want two coffees"
        );
    }

    #[test]
    fn nothing_said_never_makes_a_turn() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings::default());
        taker.speech_started();
        taker.speech_stopped(t0);
        taker.utterance_queued(t0);
        taker.transcribed(part("   ", 0, 100));
        assert_eq!(taker.deadline(), None);
        assert_eq!(taker.poll(t0 + ms(10_000)), None);
        assert_eq!(taker.interrupt(), None);
    }

    #[test]
    fn a_key_press_ends_the_turn_at_once_and_the_lowest_confidence_is_kept() {
        let t0 = Instant::now();
        let mut taker = TurnTaker::new(TurnSettings::default());
        one_utterance(&mut taker, t0, "my pin is");
        taker.transcribed(Some(TurnPart {
            text: "one two".into(),
            confidence: 0.4,
            start_ms: 1400,
            end_ms: 1900,
        }));
        let turn = taker.interrupt().unwrap();
        assert_eq!(turn.text, "my pin is one two");
        assert_eq!(turn.confidence, 0.4);
    }
}
