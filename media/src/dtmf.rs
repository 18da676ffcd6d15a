//! RFC 4733 telephone-events: DTMF digits carried in RTP, received ([`DtmfReceiver`]) and sent
//! ([`DtmfSender`], in [`sender`]).
//!
//! Receiving: one key press is one event: every packet of it carries the same RTP timestamp (the event
//! start), the duration grows, and the last packet has the E bit and is usually sent three
//! times. The receiver reports each event once, when its first end packet is seen, or — if all
//! end packets were lost — when a packet with a new event timestamp arrives or no packet of the
//! event has been seen for [`DtmfReceiver::END_TIMEOUT`]. The marker bit is not required (it is
//! often lost or absent). Works on any SSRC (sipp sends events on their own SSRC) and keeps
//! per-SSRC state so that interleaved streams cannot merge events.

use std::time::{Duration, Instant};

pub mod sender;

pub use sender::{
    DtmfError, DtmfFrame, DtmfSender, DtmfSenderConfig, END_PACKETS, MAX_QUEUED_DIGITS,
    TelephoneEvent,
};

/// A digit decoded from a telephone-event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    /// RTP timestamp of the event start.
    pub timestamp: u32,
    /// Event duration in timestamp units as last seen.
    pub duration: u16,
    /// SSRC the event came on.
    pub ssrc: u32,
}

#[derive(Debug, Clone, Copy)]
struct CurrentEvent {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    duration: u16,
    reported: bool,
    last_seen: Instant,
}

/// Maps an RFC 4733 event code to its DTMF character (events 0-15); other events (flash,
/// modem tones) are not digits.
pub fn event_to_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Maps a DTMF character to its RFC 4733 event code: `0`-`9`, `*` (10), `#` (11), `A`-`D`
/// (12-15; lower case accepted). Anything else is not a DTMF key.
pub fn char_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Collapses telephone-event packets into one digit per key press.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    payload_type: u8,
    current: Option<CurrentEvent>,
    digits: u64,
}

impl DtmfReceiver {
    /// How long after the last packet of an event without an end bit it is reported anyway.
    pub const END_TIMEOUT: Duration = Duration::from_millis(500);

    /// Creates a receiver for the telephone-event payload type negotiated in SDP.
    pub fn new(payload_type: u8) -> Self {
        Self {
            payload_type,
            current: None,
            digits: 0,
        }
    }

    /// The telephone-event payload type this receiver accepts.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Number of digits reported so far.
    pub fn digits_reported(&self) -> u64 {
        self.digits
    }

    /// Handles one RTP packet. Packets of other payload types and malformed payloads are
    /// ignored. Returns up to two digits: an earlier event that never saw its end (reported now
    /// because a new one started) and this packet's event if it carries the end bit.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        payload_type: u8,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> [Option<DtmfDigit>; 2] {
        let mut out = [None, None];
        if payload_type != self.payload_type || payload.len() < 4 {
            return out;
        }
        let event = payload[0];
        let end = payload[1] & 0x80 != 0;
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        match &mut self.current {
            Some(cur) if cur.ssrc == ssrc && cur.timestamp == timestamp => {
                // Continuation, end packet or retransmission of the current event.
                cur.last_seen = now;
                cur.duration = cur.duration.max(duration);
                if end && !cur.reported {
                    cur.reported = true;
                    out[0] = self.report(self.current);
                }
                return out;
            }
            Some(cur) if cur.ssrc == ssrc && (timestamp.wrapping_sub(cur.timestamp) as i32) < 0 => {
                // A stray packet of an older event (reordered retransmission): ignore.
                return out;
            }
            _ => {}
        }
        // A new event (or another SSRC): flush the previous one if it never ended.
        if let Some(prev) = self.current
            && !prev.reported
        {
            out[0] = self.report(Some(prev));
        }
        self.current = Some(CurrentEvent {
            ssrc,
            timestamp,
            event,
            duration,
            reported: end,
            last_seen: now,
        });
        if end {
            out[1] = self.report(self.current);
        }
        out
    }

    /// Reports an event that stopped without an end packet once [`Self::END_TIMEOUT`] has
    /// passed since its last packet.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DtmfDigit> {
        let cur = self.current?;
        if cur.reported || now < cur.last_seen + Self::END_TIMEOUT {
            return None;
        }
        if let Some(c) = &mut self.current {
            c.reported = true;
        }
        self.report(Some(cur))
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current
            .filter(|c| !c.reported)
            .map(|c| c.last_seen + Self::END_TIMEOUT)
    }

    fn report(&mut self, event: Option<CurrentEvent>) -> Option<DtmfDigit> {
        let event = event?;
        let digit = event_to_char(event.event)?;
        self.digits += 1;
        Some(DtmfDigit {
            digit,
            timestamp: event.timestamp,
            duration: event.duration,
            ssrc: event.ssrc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    fn digits(out: [Option<DtmfDigit>; 2]) -> Vec<char> {
        out.iter().flatten().map(|d| d.digit).collect()
    }

    /// The sipp 3.6.1 pattern (trunks.md §3.5): PT 97 fillers, then per digit a marker packet,
    /// durations 0, 160 … 1280 and three end packets, all at one timestamp; own SSRC.
    fn sipp_press(rx: &mut DtmfReceiver, t0: Instant, event: u8, ts: u32) -> Vec<char> {
        let mut got = Vec::new();
        for i in 0..=8u16 {
            got.extend(digits(rx.handle_packet(
                t0,
                96,
                0x0102_0305,
                ts,
                &payload(event, false, i * 160),
            )));
        }
        for _ in 0..3 {
            got.extend(digits(rx.handle_packet(
                t0,
                96,
                0x0102_0305,
                ts,
                &payload(event, true, 1280),
            )));
        }
        got
    }

    #[test]
    fn sipp_pattern_gives_one_digit_per_press() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(96);
        for _ in 0..20 {
            assert_eq!(
                digits(rx.handle_packet(t0, 97, 0x0102_0305, 0, &[0, 0, 0, 0])),
                Vec::<char>::new()
            );
        }
        assert_eq!(sipp_press(&mut rx, t0, 1, 1000), vec!['1']);
        assert_eq!(sipp_press(&mut rx, t0, 2, 3000), vec!['2']);
        assert_eq!(sipp_press(&mut rx, t0, 11, 5000), vec!['#']);
        // The same digit pressed twice (different timestamps) is two digits.
        assert_eq!(sipp_press(&mut rx, t0, 2, 7000), vec!['2']);
        assert_eq!(sipp_press(&mut rx, t0, 2, 9000), vec!['2']);
        assert_eq!(rx.digits_reported(), 5);
        assert_eq!(rx.handle_timeout(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn reports_digit_details_on_first_end_packet() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(101);
        assert_eq!(
            rx.handle_packet(t0, 101, 7, 500, &payload(10, false, 400)),
            [None, None]
        );
        let [first, second] = rx.handle_packet(t0, 101, 7, 500, &payload(10, true, 800));
        assert_eq!(
            first,
            Some(DtmfDigit {
                digit: '*',
                timestamp: 500,
                duration: 800,
                ssrc: 7
            })
        );
        assert_eq!(second, None);
        // Retransmitted end packets and a late stray of this event are ignored.
        assert_eq!(
            rx.handle_packet(t0, 101, 7, 500, &payload(10, true, 800)),
            [None, None]
        );
        assert_eq!(
            rx.handle_packet(t0, 101, 7, 400, &payload(3, true, 800)),
            [None, None]
        );
    }

    #[test]
    fn lost_end_packets_report_on_next_event_or_timeout() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(96);
        rx.handle_packet(t0, 96, 1, 100, &payload(5, false, 160));
        // A new event starts without the previous one having ended: the old digit comes out.
        let out = rx.handle_packet(t0, 96, 1, 2000, &payload(6, false, 160));
        assert_eq!(digits(out), vec!['5']);
        // A single packet that both starts and ends an event yields both digits in order.
        let out = rx.handle_packet(t0, 96, 1, 4000, &payload(7, true, 160));
        assert_eq!(digits(out), vec!['6', '7']);
        // Timeout for an event that just stops.
        rx.handle_packet(t0, 96, 1, 6000, &payload(12, false, 160));
        let deadline = rx.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + DtmfReceiver::END_TIMEOUT);
        assert_eq!(rx.handle_timeout(deadline - Duration::from_millis(1)), None);
        assert_eq!(rx.handle_timeout(deadline).map(|d| d.digit), Some('A'));
        assert_eq!(rx.handle_timeout(deadline + Duration::from_secs(1)), None);
        assert_eq!(rx.poll_timeout(), None);
        // An end packet arriving after the timeout report does not repeat the digit.
        assert_eq!(
            rx.handle_packet(deadline, 96, 1, 6000, &payload(12, true, 800)),
            [None, None]
        );
        assert_eq!(rx.digits_reported(), 4);
    }

    #[test]
    fn ignores_other_payload_types_short_payloads_and_non_digit_events() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(101);
        assert_eq!(
            rx.handle_packet(t0, 0, 1, 1, &payload(1, true, 160)),
            [None, None]
        );
        assert_eq!(rx.handle_packet(t0, 101, 1, 1, &[1, 0x80]), [None, None]);
        // Event 16 (flash) is not a digit.
        assert_eq!(
            rx.handle_packet(t0, 101, 1, 2, &payload(16, true, 160)),
            [None, None]
        );
        assert_eq!(rx.digits_reported(), 0);
        assert_eq!(event_to_char(15), Some('D'));
        assert_eq!(event_to_char(0), Some('0'));
        for event in 0..16 {
            assert_eq!(char_to_event(event_to_char(event).unwrap()), Some(event));
        }
        assert_eq!(char_to_event('b'), Some(13));
        assert_eq!(char_to_event('E'), None);
        assert_eq!(char_to_event('٣'), None);
    }

    #[test]
    fn events_on_two_ssrcs_do_not_merge() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(101);
        // Same timestamp on two SSRCs is two events.
        assert_eq!(
            digits(rx.handle_packet(t0, 101, 1, 800, &payload(4, true, 160))),
            vec!['4']
        );
        assert_eq!(
            digits(rx.handle_packet(t0, 101, 2, 800, &payload(4, true, 160))),
            vec!['4']
        );
    }
}
