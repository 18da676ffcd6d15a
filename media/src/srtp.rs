//! SRTP (RFC 3711) for the media path, keyed by SDES (RFC 4568): AES-CM-128 encryption with
//! HMAC-SHA1 authentication (80- or 32-bit tag), no MKI, as Twilio Secure Trunking and
//! Exotel's TLS variant use.
//!
//! The cryptography is the webrtc-rs `webrtc-srtp` crate. [`SrtpSession`] holds the two
//! one-way contexts of a call: the local one protects what we send, the remote one
//! unprotects what the peer sends, with a replay window of [`REPLAY_WINDOW`] packets.
//! The same contexts protect and unprotect RTCP as SRTCP (RFC 3711 §3.4: always encrypted,
//! 80-bit tag for both suites), with their own index and replay window.

use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Length of an SRTP master key for the AES-CM-128 suites (bytes).
pub const MASTER_KEY_LEN: usize = 16;
/// Length of an SRTP master salt (bytes).
pub const MASTER_SALT_LEN: usize = 14;
/// Length of the concatenated master key and salt, as carried in SDES `inline:` (bytes).
pub const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Largest authentication tag appended to an RTP packet (bytes, the `_80` suite).
pub const MAX_AUTH_TAG_LEN: usize = 10;
/// Bytes SRTCP adds to an RTCP packet: the E flag and 31-bit index, then the 80-bit tag.
pub const SRTCP_TRAILER_LEN: usize = 4 + 10;
/// Packets by which an inbound packet may lag the newest one before it counts as a replay
/// (2.56 s of 20 ms packets, far beyond any jitter buffer depth).
pub const REPLAY_WINDOW: usize = 128;

/// An SRTP crypto suite (RFC 4568 §6.2) we support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: AES-128 counter mode, 32-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Bytes of authentication tag this suite appends to each RTP packet.
    pub fn auth_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 => 4,
        }
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Self::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// The keys of one SRTP call, from the SDES exchange: each side encrypts with the key it put
/// in its own `a=crypto` line.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The negotiated suite (the same in both directions).
    pub suite: SrtpSuite,
    /// Our master key || master salt (from our SDP): we protect outbound RTP with it.
    pub local: [u8; KEY_SALT_LEN],
    /// The peer's master key || master salt (from its SDP): we unprotect inbound RTP with it.
    pub remote: [u8; KEY_SALT_LEN],
}

impl SrtpKeys {
    /// The same keys seen from the peer (local and remote exchanged).
    pub fn swapped(&self) -> Self {
        Self {
            suite: self.suite,
            local: self.remote,
            remote: self.local,
        }
    }
}

impl std::fmt::Debug for SrtpKeys {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Inbound packet whose authentication tag does not match (tampered, or other keys).
    #[error("SRTP authentication failed")]
    Authentication,
    /// Inbound packet already received, or older than the replay window.
    #[error("SRTP replayed packet (SSRC {ssrc:#010x}, sequence {sequence_number})")]
    Replay {
        /// SSRC of the packet.
        ssrc: u32,
        /// Its sequence number.
        sequence_number: u16,
    },
    /// Not an RTP packet long enough for its header and tag.
    #[error("packet too short or malformed for SRTP")]
    Malformed,
    /// Anything else the SRTP library reported (e.g. the packet index is exhausted).
    #[error("SRTP: {0}")]
    Other(String),
}

impl From<webrtc_srtp::Error> for SrtpError {
    fn from(e: webrtc_srtp::Error) -> Self {
        use webrtc_srtp::Error as E;
        match e {
            E::RtpFailedToVerifyAuthTag | E::RtcpFailedToVerifyAuthTag => Self::Authentication,
            E::SrtcpSsrcDuplicated(ssrc, index) => Self::Replay {
                ssrc,
                sequence_number: index as u16,
            },
            E::ErrTooShortRtcp | E::SrtcpTooSmall(..) => Self::Malformed,
            E::SrtpSsrcDuplicated(ssrc, sequence_number) => Self::Replay {
                ssrc,
                sequence_number,
            },
            E::ErrTooShortRtp | E::Util(_) => Self::Malformed,
            other => Self::Other(other.to_string()),
        }
    }
}

/// The SRTP state of one call: an outbound (protect) and an inbound (unprotect) context.
pub struct SrtpSession {
    suite: SrtpSuite,
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Builds both contexts from `keys` (RFC 3711 §4.3 key derivation, rate 0).
    pub fn new(keys: &SrtpKeys) -> Self {
        Self {
            suite: keys.suite,
            outbound: context(keys.suite, &keys.local),
            inbound: context(keys.suite, &keys.remote),
        }
    }

    /// The suite in use.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Protects one plain RTP packet: returns it with the payload encrypted and the
    /// authentication tag appended.
    pub fn protect(&mut self, rtp: &[u8]) -> Result<bytes::Bytes, SrtpError> {
        Ok(self.outbound.encrypt_rtp(rtp)?)
    }

    /// Unprotects one SRTP packet: checks replay and the authentication tag, then returns the
    /// plain RTP packet (without the tag). Never panics, whatever the bytes.
    pub fn unprotect(&mut self, srtp: &[u8]) -> Result<bytes::Bytes, SrtpError> {
        // The SRTP library's header parser indexes past the buffer on some malformed header
        // extensions: only let it see packets whose header our hardened parser accepts. The
        // payload is still ciphertext here, so padding is not checked (it is encrypted).
        match crate::packet::parse_rtp(srtp) {
            Ok(_) | Err(crate::packet::PacketError::BadPadding { .. }) => {}
            Err(_) => return Err(SrtpError::Malformed),
        }
        Ok(self.inbound.decrypt_rtp(srtp)?)
    }

    /// Protects one plain compound RTCP packet as SRTCP (encrypted, index, tag).
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<bytes::Bytes, SrtpError> {
        Ok(self.outbound.encrypt_rtcp(rtcp)?)
    }

    /// Unprotects one SRTCP packet: checks replay and the tag, then returns the plain compound
    /// RTCP packet. Never panics, whatever the bytes.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<bytes::Bytes, SrtpError> {
        // The library indexes the header's SSRC and the trailer without checking the length,
        // and it returns packets whose E flag is clear without checking their tag: neither
        // reaches it. (No SDP we answer negotiates UNENCRYPTED_SRTCP.)
        const RTCP_HEADER_AND_SSRC: usize = 8;
        if srtcp.len() < RTCP_HEADER_AND_SSRC + SRTCP_TRAILER_LEN || srtcp[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let e_flag = srtcp[srtcp.len() - SRTCP_TRAILER_LEN] & 0x80;
        if e_flag == 0 {
            return Err(SrtpError::Authentication);
        }
        Ok(self.inbound.decrypt_rtcp(srtcp)?)
    }
}

fn context(suite: SrtpSuite, key_salt: &[u8; KEY_SALT_LEN]) -> Context {
    let (key, salt) = key_salt.split_at(MASTER_KEY_LEN);
    Context::new(
        key,
        salt,
        suite.profile(),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
    )
    .expect("key and salt lengths are fixed by the types and match every supported suite")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(suite: SrtpSuite) -> SrtpKeys {
        let mut local = [0u8; KEY_SALT_LEN];
        let mut remote = [0u8; KEY_SALT_LEN];
        for i in 0..KEY_SALT_LEN {
            local[i] = i as u8;
            remote[i] = 0x80 | i as u8;
        }
        SrtpKeys {
            suite,
            local,
            remote,
        }
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&0xCAFE_BABEu32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// Known answer: libsrtp's reference packet (`srtp_driver.c` `srtp_validate`), master key
    /// E1F97A0D3E018BE0D64FA32C06DE4139 and salt 0EC675AD498AFEEBB6960B3AABE6 (the RFC 3711
    /// Appendix B.3 key-derivation inputs), PT 15, sequence 0x1234, SSRC 0xCAFEBABE, sixteen
    /// 0xAB payload bytes. The `_32` tag is the `_80` tag truncated to 4 bytes.
    #[test]
    fn libsrtp_reference_vector_both_suites() {
        let mut key_salt = [0u8; KEY_SALT_LEN];
        key_salt.copy_from_slice(&[
            0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde,
            0x41, 0x39, 0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a,
            0xab, 0xe6,
        ]);
        let mut plain = vec![
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe,
        ];
        plain.extend_from_slice(&[0xab; 16]);
        let expected: [u8; 38] = [
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55,
            0xdc, 0x4c, 0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02,
            0xb7, 0x8d, 0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
        ];
        for (suite, len) in [
            (SrtpSuite::AesCm128HmacSha1_80, 38),
            (SrtpSuite::AesCm128HmacSha1_32, 32),
        ] {
            let keys = SrtpKeys {
                suite,
                local: key_salt,
                remote: key_salt,
            };
            let mut session = SrtpSession::new(&keys);
            let protected = session.protect(&plain).unwrap();
            assert_eq!(&protected[..], &expected[..len], "{suite:?}");
            assert_eq!(&session.unprotect(&protected).unwrap()[..], &plain[..]);
        }
    }

    #[test]
    fn protect_unprotect_round_trip_both_suites() {
        for suite in [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ] {
            let k = keys(suite);
            let mut us = SrtpSession::new(&k);
            let mut peer = SrtpSession::new(&k.swapped());
            let plain = rtp(7, &[0xD5; 160]);
            let protected = us.protect(&plain).unwrap();
            assert_eq!(protected.len(), plain.len() + suite.auth_tag_len());
            assert_eq!(&protected[..12], &plain[..12], "header stays in the clear");
            assert_ne!(&protected[12..172], &plain[12..], "payload is encrypted");
            assert_eq!(&peer.unprotect(&protected).unwrap()[..], &plain[..]);
            // Our own inbound context uses the peer's key: our packet does not verify.
            assert_eq!(
                us.unprotect(&protected).unwrap_err(),
                SrtpError::Authentication
            );
        }
    }

    #[test]
    fn tampered_and_replayed_packets_are_refused() {
        let k = keys(SrtpSuite::AesCm128HmacSha1_80);
        let mut us = SrtpSession::new(&k);
        let mut peer = SrtpSession::new(&k.swapped());
        let p1 = us.protect(&rtp(100, &[1; 160])).unwrap();
        let p2 = us.protect(&rtp(101, &[2; 160])).unwrap();
        let mut bad = p2.to_vec();
        bad[20] ^= 1;
        assert_eq!(peer.unprotect(&bad).unwrap_err(), SrtpError::Authentication);
        assert!(peer.unprotect(&p1).is_ok());
        assert!(matches!(
            peer.unprotect(&p1).unwrap_err(),
            SrtpError::Replay {
                sequence_number: 100,
                ..
            }
        ));
        // A tampered copy did not consume the sequence number: the genuine one still passes.
        assert!(peer.unprotect(&p2).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let k = keys(SrtpSuite::AesCm128HmacSha1_32);
        let mut peer = SrtpSession::new(&k);
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                buf.push((seed >> 16) as u8);
            }
            if len > 0 {
                buf[0] = 0x80 | (buf[0] & 0x3F);
            }
            assert!(peer.unprotect(&buf).is_err());
        }
        // Header extension announcing more words than the packet has.
        let mut ext = rtp(1, &[]);
        ext[0] |= 0x10;
        ext.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(peer.unprotect(&ext).unwrap_err(), SrtpError::Malformed);
    }

    #[test]
    fn srtcp_round_trip_replay_and_garbage() {
        // An RR with no blocks from SSRC 0xCAFEBABE plus an SDES-sized tail.
        let mut rr = vec![0x80, 201, 0, 1, 0xCA, 0xFE, 0xBA, 0xBE];
        rr.extend_from_slice(&[0x81, 202, 0, 2, 0xCA, 0xFE, 0xBA, 0xBE, 1, 1, b'x', 0]);
        for suite in [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ] {
            let k = keys(suite);
            let mut us = SrtpSession::new(&k);
            let mut peer = SrtpSession::new(&k.swapped());
            let protected = us.protect_rtcp(&rr).unwrap();
            assert_eq!(protected.len(), rr.len() + SRTCP_TRAILER_LEN);
            assert_ne!(
                &protected[8..rr.len()],
                &rr[8..],
                "encrypted after the SSRC"
            );
            assert_eq!(&peer.unprotect_rtcp(&protected).unwrap()[..], &rr[..]);
            assert!(matches!(
                peer.unprotect_rtcp(&protected),
                Err(SrtpError::Replay { .. })
            ));
            let second = us.protect_rtcp(&rr).unwrap();
            let mut tampered = second.to_vec();
            tampered[10] ^= 1;
            assert_eq!(
                peer.unprotect_rtcp(&tampered),
                Err(SrtpError::Authentication)
            );
            // Cleared E flag: would skip authentication in the library; refused here.
            let mut clear = second.to_vec();
            let at = clear.len() - SRTCP_TRAILER_LEN;
            clear[at] &= 0x7F;
            assert_eq!(peer.unprotect_rtcp(&clear), Err(SrtpError::Authentication));
            for len in 0..protected.len() {
                let _ = peer.unprotect_rtcp(&protected[..len]);
                let _ = peer.unprotect_rtcp(&vec![0x80; len]);
            }
        }
    }
}
