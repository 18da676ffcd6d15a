//! RFC 4733 telephone-event sender: DTMF digits out, one packet per 20 ms frame.
//!
//! [`DtmfSender`] is sans-IO and knows nothing about RTP headers, sockets or clocks: the paced
//! sender of the media session asks it once per outbound frame what that frame carries
//! ([`DtmfSender::next_frame`], given the frame's RTP timestamp) and writes the packet itself,
//! with the session's SSRC and sequence numbers and the negotiated telephone-event payload type.
//!
//! One digit is one event (RFC 4733 §2.5.1):
//!
//! * `tone_ms / 20` update packets (default 8), all carrying the RTP timestamp of the frame in
//!   which the event started; the marker bit on the first only; duration 160, 320, … (8 kHz
//!   units, each packet covers the event up to the end of its frame; 960, 1920, … with
//!   `telephone-event/48000` on an Opus call); E bit clear;
//! * then [`END_PACKETS`] end packets (E bit set, the final duration, the same timestamp): the
//!   end is retransmitted so that one lost packet does not lose the key release (§2.5.1.4);
//! * then `gap_ms / 20` frames (default 3) without telephone-events before the next digit
//!   starts. While more digits wait, these frames are audio silence; after the last digit the
//!   audio resumes at once, but a digit queued during the gap still waits it out.
//!
//! Volume is the power level in −dBm0 (default 10). Every event is therefore
//! `(tone + 3 end packets + gap)` frames long: 280 ms per digit with the defaults.
//!
//! Cost (release build, the 2-core reference machine, best of several runs): `next_frame`
//! plus [`TelephoneEvent::payload`] ≈ 11 ns per frame, no allocation. A whole
//! `MediaSession` tick that sends a telephone-event packet costs ≈ 120–160 ns, less than an
//! audio tick (≈ 330 ns, mostly G.711 encoding), so DTMF never adds to the frame budget.
//! Queuing a string allocates once (parsing), and so does the report of the digits sent
//! ([`DtmfSender::poll_sent`]).

use std::collections::VecDeque;

use super::{char_to_event, event_to_char};

/// Milliseconds per frame.
const FRAME_MS: u32 = 20;

/// How many times the end packet of an event is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_PACKETS: u16 = 3;
/// Most digits a sender holds at once (waiting plus the one being sent); more is refused with
/// [`DtmfError::QueueFull`].
pub const MAX_QUEUED_DIGITS: usize = 64;

/// Shortest tone and gap accepted (shorter values are raised to it): ITU-T Q.24 receivers need
/// at least 40 ms of tone and of pause.
pub const MIN_TONE_MS: u32 = 40;
/// Longest tone accepted: its duration, 8 units per ms, must fit the 16-bit duration field
/// without the long-event segmentation of RFC 4733 §2.5.1.3. At a 48 kHz event clock the
/// field holds at most 1360 ms, and longer tones are cut to that.
pub const MAX_TONE_MS: u32 = 8_000;
/// Longest pause between digits accepted.
pub const MAX_GAP_MS: u32 = 10_000;

/// Timing and level of outgoing DTMF (per call, in [`SessionConfig`](crate::SessionConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSenderConfig {
    /// How long each key is "pressed" (default 160 ms): rounded up to whole 20 ms packets and
    /// clamped to [`MIN_TONE_MS`]`..=`[`MAX_TONE_MS`]. The end packets follow it.
    pub tone_ms: u32,
    /// Pause after a digit's end packets before the next digit starts (default 60 ms): rounded
    /// up to whole 20 ms frames and clamped to [`MIN_TONE_MS`]`..=`[`MAX_GAP_MS`].
    pub gap_ms: u32,
    /// The volume field: power level in −dBm0, 0..=63 (default 10; larger values are capped).
    pub volume: u8,
    /// RTP clock of the negotiated `telephone-event` (default 8000; 48000 when an Opus call
    /// negotiated `telephone-event/48000`): event durations count in its units.
    pub clock_rate: u32,
}

impl Default for DtmfSenderConfig {
    fn default() -> Self {
        Self {
            tone_ms: 160,
            gap_ms: 60,
            volume: 10,
            clock_rate: 8000,
        }
    }
}

/// Why digits could not be queued for sending. Nothing is queued when an error is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// The call did not negotiate a `telephone-event` payload type, so the peer would not
    /// understand the events.
    #[error("no telephone-event payload type was negotiated for this call")]
    NotNegotiated,
    /// A character that is not a DTMF key.
    #[error("{digit:?} (position {position}) is not a DTMF digit: expected 0-9, *, #, A-D")]
    InvalidDigit {
        /// The offending character.
        digit: char,
        /// Its index (in characters) in the string given.
        position: usize,
    },
    /// Queuing the digits would exceed [`MAX_QUEUED_DIGITS`].
    #[error("DTMF queue full: {pending} digits pending, {requested} more requested, at most {max}")]
    QueueFull {
        /// Digits already waiting or being sent.
        pending: usize,
        /// Digits in the rejected request.
        requested: usize,
        /// The limit.
        max: usize,
    },
}

/// Parses a digit string into RFC 4733 event codes: `0`-`9`, `*`, `#`, `A`-`D` (lower-case
/// `a`-`d` accepted too). An empty string gives no events. At most
/// [`MAX_QUEUED_DIGITS`] digits fit in the returned buffer; longer strings are
/// [`DtmfError::QueueFull`].
pub fn parse_digits(digits: &str) -> Result<Vec<u8>, DtmfError> {
    let mut codes = Vec::with_capacity(digits.len().min(MAX_QUEUED_DIGITS));
    for (position, digit) in digits.chars().enumerate() {
        let code = char_to_event(digit).ok_or(DtmfError::InvalidDigit { digit, position })?;
        codes.push(code);
    }
    if codes.len() > MAX_QUEUED_DIGITS {
        return Err(DtmfError::QueueFull {
            pending: 0,
            requested: codes.len(),
            max: MAX_QUEUED_DIGITS,
        });
    }
    Ok(codes)
}

/// One telephone-event packet to send (RFC 4733 §2.3), minus the RTP header fields the
/// session owns (sequence number, SSRC, payload type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// RTP timestamp: the start of the event (the same for every packet of it).
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of an event only.
    pub marker: bool,
    /// Event code (0-9, 10 = `*`, 11 = `#`, 12-15 = `A`-`D`).
    pub event: u8,
    /// The E bit: this is an end packet.
    pub end: bool,
    /// Power level in −dBm0 (0..=63).
    pub volume: u8,
    /// Event duration so far in timestamp units (of the telephone-event clock).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Length of the payload.
    pub const PAYLOAD_LEN: usize = 4;

    /// The digit this event encodes.
    pub fn digit(&self) -> char {
        event_to_char(self.event).unwrap_or('?')
    }

    /// The 4-byte payload: event, E|R|volume, duration (network order).
    pub fn payload(&self) -> [u8; Self::PAYLOAD_LEN] {
        let [hi, lo] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3F);
        [self.event, flags, hi, lo]
    }
}

/// What one outbound 20 ms frame carries while a [`DtmfSender`] is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfFrame {
    /// No DTMF now: the frame carries audio as usual (playback advances).
    Audio,
    /// A telephone-event packet replaces the audio frame (playback does not advance).
    Event(TelephoneEvent),
    /// The pause between two digits: the frame carries audio silence and playback does not
    /// advance (it resumes after the last digit).
    Silence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing in progress: the next queued digit starts at the next frame.
    Idle,
    /// Sending the event at the head of the queue.
    Event {
        timestamp: u32,
        /// Packets of the event sent so far.
        sent: u16,
        /// Update packets before the end packets (the tone length in frames; lowered when an
        /// interruption cuts the event short).
        tone: u16,
    },
    /// Frames still to wait before the next digit may start.
    Gap { frames_left: u32 },
}

/// Turns queued digits into RFC 4733 telephone-event packets, one per 20 ms frame. See the
/// module docs for the packet pattern.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    /// Timestamp units per 20 ms frame at the event clock (160, or 960 at 48 kHz).
    frame_units: u16,
    tone_frames: u16,
    gap_frames: u32,
    volume: u8,
    /// Event codes not yet completely sent; the head is the one in progress.
    queue: VecDeque<u8>,
    state: State,
    /// Digits sent since the last [`poll_sent`](Self::poll_sent) report.
    sent: String,
    /// The queue ran empty since the last report.
    batch_done: bool,
    digits_sent: u64,
}

impl DtmfSender {
    /// A sender with `config`'s timing (out-of-range values are clamped, see
    /// [`DtmfSenderConfig`]).
    pub fn new(config: DtmfSenderConfig) -> Self {
        let tone_ms = config.tone_ms.clamp(MIN_TONE_MS, MAX_TONE_MS);
        let gap_ms = config.gap_ms.clamp(MIN_TONE_MS, MAX_GAP_MS);
        let frame_units = (config.clock_rate.clamp(8000, 48_000) * FRAME_MS / 1000) as u16;
        // The 16-bit duration field bounds the tone at the event clock.
        let max_tone_frames = u16::MAX / frame_units;
        Self {
            frame_units,
            tone_frames: (tone_ms.div_ceil(FRAME_MS) as u16).min(max_tone_frames),
            gap_frames: gap_ms.div_ceil(FRAME_MS),
            volume: config.volume.min(63),
            queue: VecDeque::with_capacity(MAX_QUEUED_DIGITS),
            state: State::Idle,
            sent: String::new(),
            batch_done: false,
            digits_sent: 0,
        }
    }

    /// Queues `digits` (see [`parse_digits`]) after those already queued. All or nothing: on
    /// error nothing is queued. An empty string is accepted and changes nothing.
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        let codes = parse_digits(digits)?;
        if self.queue.len() + codes.len() > MAX_QUEUED_DIGITS {
            return Err(DtmfError::QueueFull {
                pending: self.queue.len(),
                requested: codes.len(),
                max: MAX_QUEUED_DIGITS,
            });
        }
        self.queue.extend(codes);
        Ok(())
    }

    /// Digits waiting or being sent.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Whether digits are waiting or being sent: audio playback waits behind them.
    pub fn is_busy(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Digits completely sent (final end packet produced) since the sender was created.
    pub fn digits_sent(&self) -> u64 {
        self.digits_sent
    }

    /// What the outbound frame with RTP timestamp `timestamp` carries. Call exactly once per
    /// frame actually sent, in order.
    pub fn next_frame(&mut self, timestamp: u32) -> DtmfFrame {
        loop {
            match &mut self.state {
                State::Idle => {
                    if self.queue.is_empty() {
                        return DtmfFrame::Audio;
                    }
                    self.state = State::Event {
                        timestamp,
                        sent: 0,
                        tone: self.tone_frames,
                    };
                }
                State::Gap { frames_left } => {
                    if *frames_left == 0 {
                        self.state = State::Idle;
                        continue;
                    }
                    *frames_left -= 1;
                    return if self.queue.is_empty() {
                        DtmfFrame::Audio
                    } else {
                        DtmfFrame::Silence
                    };
                }
                State::Event {
                    timestamp,
                    sent,
                    tone,
                } => {
                    *sent += 1;
                    let (timestamp, sent, tone) = (*timestamp, *sent, *tone);
                    let event = self.queue.front().copied().unwrap_or(0);
                    let packet = TelephoneEvent {
                        timestamp,
                        marker: sent == 1,
                        event,
                        end: sent > tone,
                        volume: self.volume,
                        duration: sent.min(tone) * self.frame_units,
                    };
                    if sent >= tone + END_PACKETS {
                        self.finish_digit(event);
                    }
                    return DtmfFrame::Event(packet);
                }
            }
        }
    }

    /// The session could not send this frame (call on hold, no peer address yet). Nothing
    /// advances, except that an event whose tone was interrupted is cut short: when sending
    /// resumes, its end packets go out at once with the duration sent so far and the original
    /// timestamp, so a receiver that already reported it on a timeout does not report it
    /// twice. Queued digits then follow as usual.
    pub fn interrupt(&mut self) {
        if let State::Event { sent, tone, .. } = &mut self.state
            && *sent < *tone
        {
            *tone = *sent;
        }
    }

    /// The digits sent since the previous report, once every queued digit has been sent (the
    /// final end packet of the last one produced); `None` otherwise.
    pub fn poll_sent(&mut self) -> Option<String> {
        if !self.batch_done {
            return None;
        }
        self.batch_done = false;
        Some(std::mem::take(&mut self.sent))
    }

    fn finish_digit(&mut self, event: u8) {
        self.queue.pop_front();
        self.digits_sent += 1;
        self.sent.push(event_to_char(event).unwrap_or('?'));
        if self.queue.is_empty() {
            self.batch_done = true;
        }
        self.state = State::Gap {
            frames_left: self.gap_frames,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::DtmfReceiver;
    use std::time::Instant;

    /// Runs `frames` frames starting at timestamp `ts0`, one per 160 units.
    fn run(sender: &mut DtmfSender, ts0: u32, frames: u32) -> Vec<DtmfFrame> {
        (0..frames)
            .map(|i| sender.next_frame(ts0.wrapping_add(i * 160)))
            .collect()
    }

    fn events(frames: &[DtmfFrame]) -> Vec<TelephoneEvent> {
        frames
            .iter()
            .filter_map(|f| match f {
                DtmfFrame::Event(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_digit_is_eight_updates_three_ends_then_a_gap() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        assert_eq!(s.next_frame(1000), DtmfFrame::Audio);
        s.queue("5").unwrap();
        assert!(s.is_busy());
        let frames = run(&mut s, 1160, 16);
        let ev = events(&frames[..11]);
        assert_eq!(ev.len(), 11, "{frames:?}");
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e.timestamp, 1160, "one timestamp for the whole event");
            assert_eq!(e.event, 5);
            assert_eq!(e.volume, 10);
            assert_eq!(e.digit(), '5');
            assert_eq!(e.marker, i == 0, "marker on the first packet only");
            if i < 8 {
                assert!(!e.end);
                assert_eq!(e.duration, 160 * (i as u16 + 1));
            } else {
                assert!(e.end);
                assert_eq!(e.duration, 1280);
            }
        }
        assert_eq!(ev[0].payload(), [5, 0x0A, 0x00, 0xA0]);
        assert_eq!(ev[7].payload(), [5, 0x0A, 0x05, 0x00]);
        assert_eq!(ev[8].payload(), [5, 0x8A, 0x05, 0x00]);
        // The queue is empty: the gap lets audio through at once.
        assert_eq!(&frames[11..], &[DtmfFrame::Audio; 5]);
        assert!(!s.is_busy());
        assert_eq!(s.digits_sent(), 1);
        assert_eq!(s.poll_sent().as_deref(), Some("5"));
        assert_eq!(s.poll_sent(), None);
    }

    #[test]
    fn digits_are_separated_by_a_silent_gap() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        s.queue("1#").unwrap();
        let frames = run(&mut s, 0, 30);
        // 11 packets of '1', 3 silent frames, 11 packets of '#', then audio.
        assert!(
            frames[..11]
                .iter()
                .all(|f| matches!(f, DtmfFrame::Event(_)))
        );
        assert_eq!(&frames[11..14], &[DtmfFrame::Silence; 3]);
        assert!(
            frames[14..25]
                .iter()
                .all(|f| matches!(f, DtmfFrame::Event(e) if e.event == 11))
        );
        assert_eq!(&frames[25..], &[DtmfFrame::Audio; 5]);
        let ev = events(&frames);
        assert_eq!(
            ev[11].timestamp,
            14 * 160,
            "the second event starts at its frame"
        );
        assert!(ev[11].marker);
        // Tone end of '1' (1280) to the start of '#' is 14 frames - 8 = 120 ms of no tone.
        assert_eq!(s.poll_sent().as_deref(), Some("1#"));
    }

    #[test]
    fn a_digit_queued_during_the_trailing_gap_waits_it_out() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        s.queue("7").unwrap();
        run(&mut s, 0, 11);
        assert_eq!(s.next_frame(11 * 160), DtmfFrame::Audio);
        s.queue("8").unwrap();
        // Two gap frames left: silence now that a digit waits.
        assert_eq!(run(&mut s, 12 * 160, 2), vec![DtmfFrame::Silence; 2]);
        let DtmfFrame::Event(e) = s.next_frame(14 * 160) else {
            panic!("the digit starts after the gap");
        };
        assert_eq!((e.event, e.marker, e.timestamp), (8, true, 14 * 160));
        assert_eq!(s.poll_sent().as_deref(), Some("7"));
    }

    #[test]
    fn timing_and_volume_are_configurable_and_clamped() {
        let mut s = DtmfSender::new(DtmfSenderConfig {
            tone_ms: 90, // → 100 ms: 5 packets
            gap_ms: 100,
            volume: 200,
            ..DtmfSenderConfig::default()
        });
        s.queue("00").unwrap();
        let frames = run(&mut s, 0, 25);
        let ev = events(&frames);
        assert_eq!(ev.len(), 16);
        assert_eq!(ev[4].duration, 800);
        assert!(!ev[4].end && ev[5].end && ev[7].end);
        assert_eq!(ev[7].duration, 800);
        assert!(ev.iter().all(|e| e.volume == 63));
        assert_eq!(&frames[8..13], &[DtmfFrame::Silence; 5]);
        assert!(matches!(frames[13], DtmfFrame::Event(e) if e.marker));

        let mut tiny = DtmfSender::new(DtmfSenderConfig {
            tone_ms: 0,
            gap_ms: 0,
            volume: 0,
            ..DtmfSenderConfig::default()
        });
        tiny.queue("12").unwrap();
        let frames = run(&mut tiny, 0, 12);
        // 40 ms tone (2 packets) + 3 ends, 40 ms gap.
        assert_eq!(events(&frames[..5]).len(), 5);
        assert_eq!(&frames[5..7], &[DtmfFrame::Silence; 2]);
        assert!(matches!(frames[7], DtmfFrame::Event(e) if e.event == 2 && e.marker));

        let mut long = DtmfSender::new(DtmfSenderConfig {
            tone_ms: u32::MAX,
            ..DtmfSenderConfig::default()
        });
        long.queue("9").unwrap();
        let ev = events(&run(&mut long, 0, 404));
        assert_eq!(ev.len(), 403);
        assert_eq!(ev[402].duration, 64_000);
        assert!(ev[402].end);
    }

    #[test]
    fn bad_digits_and_overflow_are_refused_whole() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        assert_eq!(
            s.queue("12x4"),
            Err(DtmfError::InvalidDigit {
                digit: 'x',
                position: 2
            })
        );
        assert_eq!(
            s.queue("1 2").unwrap_err(),
            DtmfError::InvalidDigit {
                digit: ' ',
                position: 1
            }
        );
        assert_eq!(s.pending(), 0);
        s.queue("").unwrap();
        assert!(!s.is_busy());
        s.queue("abcd*#").unwrap();
        assert_eq!(s.pending(), 6);
        let too_many = "1".repeat(59);
        assert_eq!(
            s.queue(&too_many),
            Err(DtmfError::QueueFull {
                pending: 6,
                requested: 59,
                max: 64
            })
        );
        s.queue(&"2".repeat(58)).unwrap();
        assert_eq!(s.pending(), 64);
        assert!(matches!(s.queue("3"), Err(DtmfError::QueueFull { .. })));
        assert!(matches!(
            parse_digits(&"1".repeat(65)),
            Err(DtmfError::QueueFull { requested: 65, .. })
        ));
        // Lower-case A-D are sent as the upper-case events.
        let ev = events(&run(&mut s, 0, 11));
        assert_eq!(ev[0].event, 12);
        assert_eq!(ev[0].digit(), 'A');
    }

    #[test]
    fn an_interrupted_event_ends_with_its_end_packets_on_resume() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        s.queue("36").unwrap();
        let before = events(&run(&mut s, 0, 3));
        assert_eq!(before[2].duration, 480);
        s.interrupt();
        s.interrupt(); // idempotent
        let after = run(&mut s, 99_000, 7);
        let ev = events(&after[..3]);
        assert!(
            ev.iter()
                .all(|e| e.end && e.duration == 480 && e.timestamp == 0)
        );
        assert!(ev.iter().all(|e| !e.marker));
        assert_eq!(&after[3..6], &[DtmfFrame::Silence; 3]);
        assert!(
            matches!(after[6], DtmfFrame::Event(e) if e.event == 6 && e.marker && e.timestamp == 99_000 + 6 * 160)
        );
        // Interrupting during the end packets changes nothing.
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        s.queue("3").unwrap();
        run(&mut s, 0, 9);
        s.interrupt();
        let ev = events(&run(&mut s, 0, 2));
        assert!(ev.iter().all(|e| e.end && e.duration == 1280));
        assert_eq!(s.poll_sent().as_deref(), Some("3"));
    }

    #[test]
    fn the_receiver_decodes_what_the_sender_sends() {
        let mut s = DtmfSender::new(DtmfSenderConfig::default());
        let mut rx = DtmfReceiver::new(101);
        let all = "0123456789*#ABCD";
        s.queue(all).unwrap();
        s.queue("55").unwrap();
        let t0 = Instant::now();
        let mut got = String::new();
        let ts0 = u32::MAX - 3000; // the timestamp wraps during the string
        for i in 0..(18 * 14 + 5) {
            if let DtmfFrame::Event(e) = s.next_frame(ts0.wrapping_add(i * 160)) {
                for d in rx.handle_packet(t0, 101, 42, e.timestamp, &e.payload()) {
                    got.extend(d.map(|d| d.digit));
                }
            }
        }
        assert_eq!(got, "0123456789*#ABCD55");
        assert_eq!(rx.digits_reported(), 18);
        assert_eq!(s.poll_sent().as_deref(), Some("0123456789*#ABCD55"));
    }
    #[test]
    fn a_48_khz_event_clock_counts_durations_in_960_unit_frames() {
        let mut s = DtmfSender::new(DtmfSenderConfig {
            clock_rate: 48_000,
            ..DtmfSenderConfig::default()
        });
        s.queue("5").unwrap();
        let ev = events(&run(&mut s, 0, 11));
        assert_eq!(ev.len(), 11);
        assert_eq!(ev[0].duration, 960);
        assert_eq!(ev[7].duration, 8 * 960);
        assert!(ev[8..].iter().all(|e| e.end && e.duration == 8 * 960));

        // The 16-bit duration field holds 68 frames (1360 ms) at 48 kHz: longer tones are cut.
        let mut long = DtmfSender::new(DtmfSenderConfig {
            tone_ms: 5000,
            clock_rate: 48_000,
            ..DtmfSenderConfig::default()
        });
        long.queue("9").unwrap();
        let ev = events(&run(&mut long, 0, 71));
        assert_eq!(ev.len(), 71);
        assert_eq!(ev[67].duration, 68 * 960);
        assert!(!ev[67].end && ev[68].end);
    }
}
