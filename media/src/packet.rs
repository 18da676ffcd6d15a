//! RTP packet parsing and building on top of the `rtp` crate (webrtc-rs), hardened for
//! untrusted input and free of per-packet allocation in the common case.
//!
//! `rtp::header::Header::unmarshal` indexes past the buffer (and panics) on some malformed
//! RFC 8285 header extensions, and it copies the payload into a fresh `Bytes`. So
//! [`parse_rtp`] checks the fixed header and walks the extension block itself first, lets the
//! crate decode the header fields, and returns the payload as a borrowed slice. RTCP multiplexed
//! on the RTP port (RFC 5761) is recognised and rejected.

use rtp::header::Header;
use webrtc_util::marshal::{Marshal, Unmarshal};

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram was not accepted as RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the header it announces.
    #[error("packet too short ({len} bytes) for its RTP header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// RTP version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// An RTCP packet (payload type byte 200..=204) arriving on the RTP port.
    #[error("RTCP packet type {0} on the RTP port")]
    Rtcp(u8),
    /// The header extension block or its elements run past the packet.
    #[error("malformed RTP header extension")]
    BadExtension,
    /// The padding count is zero or larger than the payload.
    #[error("bad RTP padding length {padding} for a {payload}-byte payload")]
    BadPadding {
        /// Padding count from the last byte.
        padding: usize,
        /// Payload length before removing padding.
        payload: usize,
    },
    /// The `rtp` crate rejected the header.
    #[error("RTP header rejected by the parser")]
    Header,
}

/// A parsed RTP packet: the decoded header plus a borrowed payload (padding removed).
#[derive(Debug, Clone)]
pub struct RtpPacket<'a> {
    /// Decoded fixed header (CSRCs and extensions included when present).
    pub header: Header,
    /// Payload bytes after the header, extension and without padding.
    pub payload: &'a [u8],
}

/// Parses one datagram as RTP. Never panics, whatever the bytes.
pub fn parse_rtp(datagram: &[u8]) -> Result<RtpPacket<'_>, PacketError> {
    let len = datagram.len();
    if len < RTP_HEADER_LEN {
        return Err(PacketError::TooShort { len });
    }
    let b0 = datagram[0];
    let version = b0 >> 6;
    if version != 2 {
        return Err(PacketError::BadVersion(version));
    }
    let b1 = datagram[1];
    if (200..=204).contains(&b1) {
        return Err(PacketError::Rtcp(b1));
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = (b0 & 0x0F) as usize;
    let mut payload_start = RTP_HEADER_LEN + 4 * csrc_count;
    if len < payload_start {
        return Err(PacketError::TooShort { len });
    }
    if has_extension {
        payload_start = check_extension(datagram, payload_start)?;
    }
    let mut cursor: &[u8] = datagram;
    let header = Header::unmarshal(&mut cursor).map_err(|_| PacketError::Header)?;
    let mut payload = datagram
        .get(payload_start..)
        .ok_or(PacketError::TooShort { len })?;
    if has_padding {
        let padding = payload.last().copied().unwrap_or(0) as usize;
        if padding == 0 || padding > payload.len() {
            return Err(PacketError::BadPadding {
                padding,
                payload: payload.len(),
            });
        }
        payload = &payload[..payload.len() - padding];
    }
    Ok(RtpPacket { header, payload })
}

/// Validates the extension block starting at `start` so that the `rtp` crate's parser stays in
/// bounds; returns the offset just past the block.
fn check_extension(datagram: &[u8], start: usize) -> Result<usize, PacketError> {
    let profile_bytes = datagram
        .get(start..start + 4)
        .ok_or(PacketError::BadExtension)?;
    let profile = u16::from_be_bytes([profile_bytes[0], profile_bytes[1]]);
    let words = u16::from_be_bytes([profile_bytes[2], profile_bytes[3]]) as usize;
    let body = start + 4;
    let end = body + words * 4;
    if end > datagram.len() {
        return Err(PacketError::BadExtension);
    }
    match profile {
        rtp::header::EXTENSION_PROFILE_ONE_BYTE => {
            let mut i = body;
            while i < end {
                let b = datagram[i];
                i += 1;
                if b == 0 {
                    continue;
                }
                if b >> 4 == rtp::header::EXTENSION_ID_RESERVED {
                    break;
                }
                let element_len = (b & 0x0F) as usize + 1;
                if i + element_len > end {
                    return Err(PacketError::BadExtension);
                }
                i += element_len;
            }
        }
        rtp::header::EXTENSION_PROFILE_TWO_BYTE => {
            let mut i = body;
            while i < end {
                let b = datagram[i];
                i += 1;
                if b == 0 {
                    continue;
                }
                let element_len = *datagram.get(i).ok_or(PacketError::BadExtension)? as usize;
                i += 1;
                if i > end || i + element_len > end {
                    return Err(PacketError::BadExtension);
                }
                i += element_len;
            }
        }
        _ => {}
    }
    Ok(end)
}

/// Writes a 12-byte RTP header (version 2, no CSRC, no extension) into `buf` and returns its
/// length. Allocation-free; `buf` must hold at least [`RTP_HEADER_LEN`] bytes.
pub fn write_rtp_header(
    buf: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
) -> usize {
    let header = Header {
        version: 2,
        marker,
        payload_type: payload_type & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        ..Header::default()
    };
    match header.marshal_to(buf) {
        Ok(n) => n,
        Err(_) => {
            // Only possible when `buf` is shorter than 12 bytes; fall back to a manual write of
            // whatever fits so that callers never panic.
            let mut fixed = [0u8; RTP_HEADER_LEN];
            fixed[0] = 0x80;
            fixed[1] = (payload_type & 0x7F) | if marker { 0x80 } else { 0 };
            fixed[2..4].copy_from_slice(&sequence_number.to_be_bytes());
            fixed[4..8].copy_from_slice(&timestamp.to_be_bytes());
            fixed[8..12].copy_from_slice(&ssrc.to_be_bytes());
            let n = buf.len().min(RTP_HEADER_LEN);
            buf[..n].copy_from_slice(&fixed[..n]);
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; RTP_HEADER_LEN + payload.len()];
        write_rtp_header(&mut buf, false, pt, seq, ts, ssrc);
        buf[RTP_HEADER_LEN..].copy_from_slice(payload);
        buf
    }

    #[test]
    fn round_trip_header_and_payload() {
        let mut buf = [0u8; 20];
        let n = write_rtp_header(&mut buf, true, 8, 0xABCD, 0x0102_0304, 0xDEAD_BEEF);
        assert_eq!(n, 12);
        assert_eq!(
            &buf[..12],
            &[0x80, 0x88, 0xAB, 0xCD, 1, 2, 3, 4, 0xDE, 0xAD, 0xBE, 0xEF]
        );
        buf[12..].copy_from_slice(&[9; 8]);
        let p = parse_rtp(&buf).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 8);
        assert_eq!(p.header.sequence_number, 0xABCD);
        assert_eq!(p.header.timestamp, 0x0102_0304);
        assert_eq!(p.header.ssrc, 0xDEAD_BEEF);
        assert_eq!(p.payload, &[9; 8]);
    }

    #[test]
    fn padding_csrc_and_extension_are_skipped() {
        // V=2, P=1, X=1, CC=1; PT 0.
        let mut buf = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        buf.extend_from_slice(&[0, 0, 0, 42]); // CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]); // one-byte ext, id 1 len 2
        buf.extend_from_slice(&[1, 2, 3, 4, 5]);
        buf.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = parse_rtp(&buf).unwrap();
        assert_eq!(p.header.csrc, vec![42]);
        assert_eq!(p.payload, &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(matches!(
            parse_rtp(&[0x80; 5]),
            Err(PacketError::TooShort { len: 5 })
        ));
        let mut v1 = packet(0, 1, 1, 1, &[1]);
        v1[0] = 0x40;
        assert!(matches!(parse_rtp(&v1), Err(PacketError::BadVersion(1))));
        let mut rtcp = packet(0, 1, 1, 1, &[1]);
        rtcp[1] = 200;
        assert!(matches!(parse_rtp(&rtcp), Err(PacketError::Rtcp(200))));
        // One-byte extension element claiming 16 bytes inside a 4-byte block.
        let bad_ext = [
            0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0,
        ];
        assert!(matches!(
            parse_rtp(&bad_ext),
            Err(PacketError::BadExtension)
        ));
        // Two-byte extension whose length byte is past the end.
        let bad_two = [
            0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x10, 0x00, 0, 1, 0, 0, 0, 5,
        ];
        assert!(matches!(
            parse_rtp(&bad_two),
            Err(PacketError::BadExtension)
        ));
        // Padding larger than payload.
        let mut pad = packet(0, 1, 1, 1, &[1, 2]);
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 9;
        assert!(matches!(
            parse_rtp(&pad),
            Err(PacketError::BadPadding { .. })
        ));
        // CSRC count beyond the datagram.
        let mut cc = packet(0, 1, 1, 1, &[]);
        cc[0] |= 0x0F;
        assert!(matches!(parse_rtp(&cc), Err(PacketError::TooShort { .. })));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = rng.random_range(0..64);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 0 && rng.random_bool(0.7) {
                // Mostly valid version with random flags to reach the deeper paths.
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            if len > 16 && rng.random_bool(0.3) {
                buf[0] |= 0x10;
                let profile: u16 = if rng.random_bool(0.5) { 0xBEDE } else { 0x1000 };
                let cc = (buf[0] & 0x0F) as usize;
                let at = 12 + 4 * cc;
                if at + 4 <= len {
                    buf[at..at + 2].copy_from_slice(&profile.to_be_bytes());
                }
            }
            if parse_rtp(&buf).is_ok() {
                accepted += 1;
            }
        }
        assert!(
            accepted > 1000,
            "the generator should also produce valid packets"
        );
    }
}
