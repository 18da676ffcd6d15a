//! RTCP (RFC 3550 §6) for one call, sans-IO: reading the peer's compound reports, writing ours,
//! round-trip time from report blocks (§6.4.1) and an E-model MOS estimate (ITU-T G.107).
//!
//! The wire format is the webrtc-rs `rtcp` crate's (`SenderReport`, `ReceiverReport`,
//! `SourceDescription`, `Goodbye`). [`parse_compound`] walks the compound packet itself first
//! (version, lengths) and hands the crate only the SR, RR, SDES and BYE packets, each as an
//! exact slice; every other packet type is skipped unparsed. So nothing a peer sends can make
//! the crate's other parsers run, and nothing panics.
//!
//! [`RtcpSession`] is the per-call state: when the next report is due (every
//! [`DEFAULT_RTCP_INTERVAL`], randomised to 0.5–1.5 ×, the first one after half of that —
//! RFC 3550 §6.2 for a two-party session, without the full bandwidth algorithm), the last
//! sender report of the peer (for LSR/DLSR), what the previous report said about the peer's
//! stream (for the fraction lost), and the figures read from the peer's reports about ours.
//! The session's clock is the caller's `Instant`; NTP timestamps are that clock placed on the
//! wall clock the driver gives with [`RtcpSession::set_wall_clock`] (RTT needs only that the
//! clock is monotonic: LSR is our own timestamp echoed back).
//!
//! # E-model
//!
//! [`r_factor`] is the G.107 transmission rating with default values for everything but
//! delay and packet loss (the simplification of Cole & Rosenbluth, "Voice over IP performance
//! monitoring", ACM CCR 31(2), 2001):
//!
//! * `R = 93.2 − Id − Ie_eff` (93.2 = Ro − Is − … with every G.107 default; A = 0);
//! * `Id = 0.024 d + 0.11 (d − 177.3) H(d − 177.3)`, `d` the one-way mouth-to-ear delay in ms
//!   (H the step function; echo assumed cancelled);
//! * `Ie_eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.4), `Ppl` in percent,
//!   `BurstR = 1` (random loss);
//! * G.711 with packet-loss concealment: `Ie = 0`, `Bpl = 25.1` (ITU-T G.113 Appendix I);
//! * `MOS = 1 + 0.035 R + R (R − 60)(100 − R) · 7·10⁻⁶` for `0 < R < 100` (G.107 Annex B),
//!   1 below, 4.5 above.
//!
//! So a perfect G.711 call rates R = 93.2, MOS 4.41. The same constants are used for G.722
//! (a narrowband rating of a wideband call, i.e. conservative).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtcp::goodbye::Goodbye;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use webrtc_util::marshal::{Marshal, MarshalSize, Unmarshal};

/// Mean time between two of our reports (RFC 3550's 5 s minimum, fine for a two-party call).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Room for one outbound compound report: SR (28) + one report block (24) + SDES with a
/// 14-byte CNAME (24) is 76 bytes; SRTCP adds 4 + 10.
pub const MAX_REPORT_LEN: usize = 128;
/// RTCP packet type of a sender report (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type of a source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type of a goodbye.
pub const PT_BYE: u8 = 203;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// E-model rating of a perfect call with every G.107 default (Ro − Is).
pub const R_DEFAULT: f64 = 93.2;
/// Equipment impairment factor of G.711 (ITU-T G.113 Appendix I).
pub const G711_IE: f64 = 0.0;
/// Packet-loss robustness of G.711 with concealment, random loss (ITU-T G.113 Appendix I).
pub const G711_BPL: f64 = 25.1;

/// Why an RTCP datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Empty, or shorter than the header of the packet it starts.
    #[error("RTCP packet too short ({len} bytes)")]
    TooShort {
        /// Bytes left where a packet was expected.
        len: usize,
    },
    /// Version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// A packet's length field runs past the datagram.
    #[error("RTCP length {words} words runs past the datagram ({left} bytes left)")]
    BadLength {
        /// The length field (32-bit words minus one).
        words: u16,
        /// Bytes left in the datagram.
        left: usize,
    },
    /// The `rtcp` crate rejected an SR, RR, SDES or BYE packet of this type.
    #[error("malformed RTCP packet of type {0}")]
    Malformed(u8),
    /// Our report did not fit the output buffer.
    #[error("output buffer too small for the RTCP report")]
    BufferTooSmall,
}

/// A 64-bit NTP timestamp: seconds since 1900 in the upper 32 bits, fraction in the lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The NTP timestamp of a wall-clock time (times before 1970 give the NTP epoch + 70 y).
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix(since_unix)
    }

    /// The NTP timestamp `since_unix` after the Unix epoch.
    pub fn from_unix(since_unix: Duration) -> Self {
        let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        Self((secs << 32) | fraction)
    }

    /// This timestamp `d` later (wrapping like NTP era arithmetic).
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.wrapping_add(duration_to_ntp(d)))
    }

    /// The middle 32 bits (16.16 fixed point seconds), the form LSR and A take in §6.4.1.
    pub fn middle_32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// A duration as 32.32 fixed-point seconds.
fn duration_to_ntp(d: Duration) -> u64 {
    (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// A duration as 16.16 fixed-point seconds (the unit of DLSR), saturating.
pub fn duration_to_short_ntp(d: Duration) -> u32 {
    let units = d.as_nanos().saturating_mul(65_536) / 1_000_000_000;
    units.min(u32::MAX as u128) as u32
}

/// 16.16 fixed-point seconds as a duration.
pub fn short_ntp_to_duration(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1): `A − LSR − DLSR`,
/// with `A` the middle 32 bits of the NTP time the report arrived. `None` when the block does
/// not refer to a sender report (`LSR = 0`) or the result is negative (clocks or a bogus
/// block; nothing sensible to report).
pub fn round_trip_time(arrival_middle_32: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let rtt = arrival_middle_32.wrapping_sub(lsr).wrapping_sub(dlsr);
    // A wrapped (negative) result is in the upper half of the 32-bit space.
    (rtt < 0x8000_0000).then(|| short_ntp_to_duration(rtt))
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// When the report was sent, the sender's NTP time.
    pub ntp_time: NtpTimestamp,
    /// The same instant in the sender's RTP timestamp units.
    pub rtp_time: u32,
    /// RTP packets sent so far.
    pub packet_count: u32,
    /// RTP payload octets sent so far.
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of those expected, × 256.
    pub fraction_lost: u8,
    /// Packets lost since the beginning of reception (24 bits on the wire, signed).
    pub cumulative_lost: i32,
    /// Cycles << 16 | highest sequence number received.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR from that source (0: none).
    pub last_sr: u32,
    /// Delay between receiving that SR and sending this block, 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn from_wire(r: &ReceptionReport) -> Self {
        // 24-bit two's complement on the wire (the crate keeps it unsigned).
        let raw = r.total_lost & 0x00FF_FFFF;
        let cumulative_lost = ((raw << 8) as i32) >> 8;
        Self {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            cumulative_lost,
            extended_highest_sequence: r.last_sequence_number,
            jitter: r.jitter,
            last_sr: r.last_sender_report,
            delay_since_last_sr: r.delay,
        }
    }

    fn to_wire(self) -> ReceptionReport {
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost: self.fraction_lost,
            // Clamp to the 24-bit signed range, then keep 24 bits.
            total_lost: (self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF,
            last_sequence_number: self.extended_highest_sequence,
            jitter: self.jitter,
            last_sender_report: self.last_sr,
            delay: self.delay_since_last_sr,
        }
    }
}

/// What a compound RTCP packet said (SR, RR, SDES CNAME, BYE; other packet types skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompoundReport {
    /// The sender info of the first SR, if there was one.
    pub sender: Option<SenderInfo>,
    /// SSRC of the first SR or RR's sender.
    pub reporter_ssrc: Option<u32>,
    /// Every report block of every SR and RR.
    pub blocks: Vec<ReportBlock>,
    /// The first CNAME item of an SDES packet.
    pub cname: Option<Bytes>,
    /// SSRCs that said goodbye.
    pub bye: Vec<u32>,
    /// Packets of other types that were skipped.
    pub skipped: usize,
}

/// Parses one compound RTCP datagram (after SRTCP, if any). Never panics, whatever the bytes.
pub fn parse_compound(datagram: &[u8]) -> Result<CompoundReport, RtcpError> {
    if datagram.len() < 4 {
        return Err(RtcpError::TooShort {
            len: datagram.len(),
        });
    }
    let mut report = CompoundReport::default();
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::TooShort { len: rest.len() });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let packet_type = rest[1];
        let words = u16::from_be_bytes([rest[2], rest[3]]);
        let len = 4 * (usize::from(words) + 1);
        if len > rest.len() {
            return Err(RtcpError::BadLength {
                words,
                left: rest.len(),
            });
        }
        let (packet, tail) = rest.split_at(len);
        rest = tail;
        let malformed = |_| RtcpError::Malformed(packet_type);
        match packet_type {
            PT_SR => {
                let sr = SenderReport::unmarshal(&mut &packet[..]).map_err(malformed)?;
                if report.sender.is_none() {
                    report.sender = Some(SenderInfo {
                        ssrc: sr.ssrc,
                        ntp_time: NtpTimestamp(sr.ntp_time),
                        rtp_time: sr.rtp_time,
                        packet_count: sr.packet_count,
                        octet_count: sr.octet_count,
                    });
                }
                report.reporter_ssrc.get_or_insert(sr.ssrc);
                report
                    .blocks
                    .extend(sr.reports.iter().map(ReportBlock::from_wire));
            }
            PT_RR => {
                let rr = ReceiverReport::unmarshal(&mut &packet[..]).map_err(malformed)?;
                report.reporter_ssrc.get_or_insert(rr.ssrc);
                report
                    .blocks
                    .extend(rr.reports.iter().map(ReportBlock::from_wire));
            }
            PT_SDES => {
                let sdes = SourceDescription::unmarshal(&mut &packet[..]).map_err(malformed)?;
                if report.cname.is_none() {
                    report.cname = sdes
                        .chunks
                        .iter()
                        .flat_map(|c| c.items.iter())
                        .find(|i| i.sdes_type == SdesType::SdesCname)
                        .map(|i| i.text.clone());
                }
            }
            PT_BYE => {
                let bye = Goodbye::unmarshal(&mut &packet[..]).map_err(malformed)?;
                report.bye.extend_from_slice(&bye.sources);
            }
            _ => report.skipped += 1,
        }
    }
    Ok(report)
}

/// What we report about the peer's stream: counters of the jitter buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptionSnapshot {
    /// SSRC of the peer's stream.
    pub ssrc: u32,
    /// Cycles << 16 | highest sequence number received.
    pub extended_highest_sequence: u32,
    /// Audio packets received in time (not duplicates, not late), since the call began.
    pub received: u64,
    /// Audio packets declared lost, since the call began.
    pub lost: u64,
    /// RFC 3550 interarrival jitter, RTP timestamp units.
    pub jitter: f64,
}

/// What we say about our own stream in an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderSnapshot {
    /// Our RTP timestamp at the report's NTP time.
    pub rtp_time: u32,
    /// RTP packets sent so far.
    pub packet_count: u64,
}

/// RTCP figures of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtcpStats {
    /// Compound RTCP packets we sent.
    pub sent: u64,
    /// Compound RTCP packets received and parsed (on either port).
    pub received: u64,
    /// RTCP datagrams rejected (malformed, or SRTCP that failed authentication).
    pub invalid: u64,
    /// The latest round-trip time from a report block about our stream, ms.
    pub rtt_last_ms: Option<f64>,
    /// Mean of every round-trip time measured, ms.
    pub rtt_mean_ms: Option<f64>,
    /// Round-trip times measured.
    pub rtt_samples: u64,
    /// The peer's latest fraction lost of our stream (0–1).
    pub peer_fraction_lost: Option<f64>,
    /// The peer's latest cumulative count of our packets lost.
    pub peer_cumulative_lost: Option<i64>,
    /// The peer's latest interarrival jitter of our stream, ms (8 kHz timestamp units).
    pub peer_jitter_ms: Option<f64>,
    /// The peer sent an RTCP BYE.
    pub peer_bye: bool,
}

/// The RTCP state of one call; see the module docs.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: [u8; 14],
    interval: Duration,
    next_report: Instant,
    /// Instant ↔ NTP time anchor.
    anchor: (Instant, NtpTimestamp),
    /// Middle 32 bits of the peer's last SR and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// `received` and `lost` of the peer's stream at our previous report.
    previous: Option<(u64, u64)>,
    /// RTP sent since our previous report (SR rather than RR).
    sent_rtp: bool,
    /// RTP payload octets sent (SR octet count).
    octets_sent: u64,
    rtt_sum_ms: f64,
    stats: RtcpStats,
}

/// Clock rate of every codec's RTP timestamps here (G.711 and G.722 both count 8 kHz).
const RTP_CLOCK_HZ: f64 = 8000.0;

impl RtcpSession {
    /// State for our stream `ssrc`, reporting every `interval` on average; the first report is
    /// due half a randomised interval after `now`. NTP time starts at the Unix epoch until
    /// [`set_wall_clock`](Self::set_wall_clock).
    pub fn new(ssrc: u32, now: Instant, interval: Duration) -> Self {
        let mut cname = *b"vaani-00000000";
        let hex = b"0123456789abcdef";
        for (i, byte) in cname[6..].iter_mut().enumerate() {
            *byte = hex[((ssrc >> (28 - 4 * i)) & 0xF) as usize];
        }
        let interval = interval.max(Duration::from_millis(100));
        Self {
            ssrc,
            cname,
            interval,
            next_report: now + randomised(interval) / 2,
            anchor: (now, NtpTimestamp::from_unix(Duration::ZERO)),
            last_sr: None,
            previous: None,
            sent_rtp: false,
            octets_sent: 0,
            rtt_sum_ms: 0.0,
            stats: RtcpStats::default(),
        }
    }

    /// Places the session clock on the wall clock: `now` is `wall` (NTP timestamps of our SRs).
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.anchor = (now, NtpTimestamp::from_system_time(wall));
    }

    /// The NTP time of `at` on the session clock.
    pub fn ntp_at(&self, at: Instant) -> NtpTimestamp {
        let (anchor, ntp) = self.anchor;
        if at >= anchor {
            ntp.plus(at - anchor)
        } else {
            NtpTimestamp(ntp.0.wrapping_sub(duration_to_ntp(anchor - at)))
        }
    }

    /// Our CNAME (`vaani-` and the SSRC in hex).
    pub fn cname(&self) -> &[u8] {
        &self.cname
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// Skips the report due now (nobody to send it to, or it could not be written): the next
    /// one is due a randomised interval after `now`.
    pub fn postpone(&mut self, now: Instant) {
        self.next_report = now + randomised(self.interval);
    }

    /// Counts one RTP packet we sent with `payload_len` bytes of payload.
    pub fn on_rtp_sent(&mut self, payload_len: usize) {
        self.sent_rtp = true;
        self.octets_sent += payload_len as u64;
    }

    /// Counts a datagram that was RTCP but could not be used (malformed, failed SRTCP).
    pub fn on_invalid(&mut self) {
        self.stats.invalid += 1;
    }

    /// Figures so far.
    pub fn stats(&self) -> RtcpStats {
        self.stats
    }

    /// Handles one plain compound RTCP datagram that arrived at `now`: remembers the peer's SR
    /// for our next LSR/DLSR and reads the blocks about our stream (RTT, the peer's view of
    /// our loss and jitter). Rejected datagrams are counted in [`RtcpStats::invalid`].
    pub fn handle_compound(
        &mut self,
        now: Instant,
        datagram: &[u8],
    ) -> Result<CompoundReport, RtcpError> {
        let report = match parse_compound(datagram) {
            Ok(r) => r,
            Err(e) => {
                self.stats.invalid += 1;
                return Err(e);
            }
        };
        self.stats.received += 1;
        if let Some(sender) = report.sender
            && sender.ssrc != self.ssrc
        {
            self.last_sr = Some((sender.ntp_time.middle_32(), now));
        }
        let arrival = self.ntp_at(now).middle_32();
        for block in report.blocks.iter().filter(|b| b.ssrc == self.ssrc) {
            if let Some(rtt) = round_trip_time(arrival, block.last_sr, block.delay_since_last_sr) {
                let ms = rtt.as_secs_f64() * 1000.0;
                self.rtt_sum_ms += ms;
                self.stats.rtt_samples += 1;
                self.stats.rtt_last_ms = Some(ms);
                self.stats.rtt_mean_ms = Some(self.rtt_sum_ms / self.stats.rtt_samples as f64);
            }
            self.stats.peer_fraction_lost = Some(f64::from(block.fraction_lost) / 256.0);
            self.stats.peer_cumulative_lost = Some(i64::from(block.cumulative_lost));
            self.stats.peer_jitter_ms = Some(f64::from(block.jitter) * 1000.0 / RTP_CLOCK_HZ);
        }
        if report.bye.contains(&self.ssrc)
            || report
                .reporter_ssrc
                .is_some_and(|s| report.bye.contains(&s))
        {
            self.stats.peer_bye = true;
        }
        Ok(report)
    }

    /// Writes our compound report for `now` into `out` and schedules the next one: an SR when
    /// we sent RTP since the previous report (else an RR), with one report block about the
    /// peer's stream when we have received any, then an SDES with our CNAME. Returns its
    /// length.
    pub fn write_report(
        &mut self,
        now: Instant,
        reception: Option<ReceptionSnapshot>,
        sender: SenderSnapshot,
        out: &mut [u8],
    ) -> Result<usize, RtcpError> {
        let reports: Vec<ReceptionReport> = reception
            .map(|r| self.report_block(now, r).to_wire())
            .into_iter()
            .collect();
        let sdes = SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::copy_from_slice(&self.cname),
                }],
            }],
        };
        let too_small = |_| RtcpError::BufferTooSmall;
        let mut len = if self.sent_rtp {
            let sr = SenderReport {
                ssrc: self.ssrc,
                ntp_time: self.ntp_at(now).0,
                rtp_time: sender.rtp_time,
                packet_count: sender.packet_count as u32,
                octet_count: self.octets_sent as u32,
                reports,
                profile_extensions: Bytes::new(),
            };
            if sr.marshal_size() > out.len() {
                return Err(RtcpError::BufferTooSmall);
            }
            sr.marshal_to(out).map_err(too_small)?
        } else {
            let rr = ReceiverReport {
                ssrc: self.ssrc,
                reports,
                profile_extensions: Bytes::new(),
            };
            if rr.marshal_size() > out.len() {
                return Err(RtcpError::BufferTooSmall);
            }
            rr.marshal_to(out).map_err(too_small)?
        };
        let rest = &mut out[len..];
        if sdes.marshal_size() > rest.len() {
            return Err(RtcpError::BufferTooSmall);
        }
        len += sdes.marshal_to(rest).map_err(too_small)?;
        self.sent_rtp = false;
        self.stats.sent += 1;
        self.next_report = now + randomised(self.interval);
        Ok(len)
    }

    /// The block about the peer's stream; remembers its counters for the next fraction.
    fn report_block(&mut self, now: Instant, r: ReceptionSnapshot) -> ReportBlock {
        let (previous_received, previous_lost) = self.previous.unwrap_or((0, 0));
        let received = r.received.saturating_sub(previous_received);
        let lost = r.lost.saturating_sub(previous_lost);
        let expected = received + lost;
        let fraction_lost = (lost * 256)
            .checked_div(expected)
            .map_or(0, |f| f.min(255) as u8);
        self.previous = Some((r.received, r.lost));
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (
                lsr,
                duration_to_short_ntp(now.saturating_duration_since(at)),
            ),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: r.ssrc,
            fraction_lost,
            cumulative_lost: r.lost.min(0x7F_FFFF) as i32,
            extended_highest_sequence: r.extended_highest_sequence,
            jitter: r.jitter.max(0.0).min(u32::MAX as f64) as u32,
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// `interval` × a uniform factor in [0.5, 1.5) (RFC 3550 §6.3.1).
fn randomised(interval: Duration) -> Duration {
    interval.mul_f64(0.5 + rand::random::<f64>())
}

/// G.107 transmission rating R for a one-way mouth-to-ear delay `delay_ms`, packet loss
/// `loss` (0–1, random) and a codec's `ie` / `bpl`; see the module docs for the formula.
pub fn r_factor(delay_ms: f64, loss: f64, ie: f64, bpl: f64) -> f64 {
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = (loss.clamp(0.0, 1.0)) * 100.0;
    let burst_r = 1.0;
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl);
    R_DEFAULT - id - ie_eff
}

/// Mean opinion score (1–4.5) of a rating `r` (G.107 Annex B).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// MOS estimate of a G.711 call (with concealment) from its one-way delay and loss.
pub fn g711_mos(delay_ms: f64, loss: f64) -> f64 {
    mos_from_r(r_factor(delay_ms, loss, G711_IE, G711_BPL))
}

#[cfg(test)]
mod tests;
