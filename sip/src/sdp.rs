//! SDP offer/answer (RFC 3264) for G.711, G.722 and Opus audio with RFC 4733 telephone-events.
//!
//! Offers are parsed with the `sdp` crate (webrtc-rs); answers are written out directly so the
//! exact lines peers depend on (`c=` always present, `a=ptime`, mirrored direction) are explicit.

use std::fmt::Write as _;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use ::sdp::description::common::Attribute;
use ::sdp::description::media::MediaDescription;
use ::sdp::description::session::SessionDescription;

use crate::sdes::{CryptoAttribute, SrtpSuite};

/// The telephone-event payload type of our first offer (what Twilio uses too).
pub const OFFER_DTMF_PAYLOAD_TYPE: u8 = 101;

/// The dynamic payload type of Opus in our own offers (what WebRTC stacks use); an answer to
/// an offer uses the offerer's.
pub const OFFER_OPUS_PAYLOAD_TYPE: u8 = 111;

/// The `a=fmtp` parameters we send for Opus (RFC 7587 §7): we decode in-band FEC, so the peer
/// should send it; we decode at 16 kHz, so wider audio would be wasted bandwidth; mono.
pub const OPUS_FMTP: &str =
    "minptime=10;useinbandfec=1;maxplaybackrate=16000;sprop-maxcapturerate=16000;stereo=0";

/// Largest SDP body we try to parse.
const MAX_SDP_SIZE: usize = 16 * 1024;

/// Audio codecs the media engine can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 wideband (16 kHz audio), static payload type 9, `G722/8000` (RFC 3551 keeps the
    /// 8000 Hz RTP clock).
    G722,
    /// Opus (RFC 7587): dynamic payload type, `opus/48000/2` (the RTP clock is always 48 kHz),
    /// `a=fmtp` [`OPUS_FMTP`].
    Opus,
}

impl AudioCodec {
    /// The payload type we offer: the static one (RFC 3551), or [`OFFER_OPUS_PAYLOAD_TYPE`]
    /// for Opus, which has none.
    pub fn static_payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::G722 => 9,
            AudioCodec::Opus => OFFER_OPUS_PAYLOAD_TYPE,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
            AudioCodec::Opus => "opus",
        }
    }

    /// RTP clock rate in Hz: 8000, or 48000 for Opus.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => 8000,
        }
    }

    /// The value of our `a=rtpmap` for this codec on `payload_type` (`0 PCMU/8000`,
    /// `111 opus/48000/2`).
    fn rtpmap(self, payload_type: u8) -> String {
        match self {
            AudioCodec::Opus => format!("{payload_type} opus/48000/2"),
            _ => format!(
                "{payload_type} {}/{}",
                self.encoding_name(),
                self.clock_rate()
            ),
        }
    }

    /// Our `a=fmtp` parameters for this codec, if it has any.
    fn fmtp(self) -> Option<&'static str> {
        (self == AudioCodec::Opus).then_some(OPUS_FMTP)
    }
}

/// Media direction of an audio stream, from our side (RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaDirection {
    /// We send and receive.
    SendRecv,
    /// We only send (the peer offered `recvonly`).
    SendOnly,
    /// We only receive (the peer offered `sendonly`, e.g. hold).
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl MediaDirection {
    fn attribute(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }

    fn from_attribute(key: &str) -> Option<Self> {
        match key {
            "sendrecv" => Some(MediaDirection::SendRecv),
            "sendonly" => Some(MediaDirection::SendOnly),
            "recvonly" => Some(MediaDirection::RecvOnly),
            "inactive" => Some(MediaDirection::Inactive),
            _ => None,
        }
    }

    /// The answer's direction for an offered direction.
    fn mirrored(self) -> Self {
        match self {
            MediaDirection::SendRecv => MediaDirection::SendRecv,
            MediaDirection::SendOnly => MediaDirection::RecvOnly,
            MediaDirection::RecvOnly => MediaDirection::SendOnly,
            MediaDirection::Inactive => MediaDirection::Inactive,
        }
    }
}

/// What offer/answer agreed on for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The codec both sides use.
    pub codec: AudioCodec,
    /// Its payload type (as offered; normally the static 0 or 8).
    pub payload_type: u8,
    /// The offered `telephone-event` payload type, echoed in the answer: the one at the audio
    /// codec's clock (RFC 4733 §2.1: `telephone-event/48000` with Opus) if offered, else the
    /// `telephone-event/8000` one.
    pub dtmf_payload_type: Option<u8>,
    /// The RTP clock of that telephone-event (8000, or 48000): event durations count in it.
    pub dtmf_clock_rate: u32,
    /// Where to send RTP (`c=` and `m=`); `None` when the offer has `c=0.0.0.0` (hold) or no
    /// usable address.
    pub remote_rtp: Option<SocketAddr>,
    /// Packetisation to send with: the offer's `a=ptime` when it is 10–60 ms in 10 ms steps
    /// (and within `a=maxptime`), else 20.
    pub ptime_ms: u32,
    /// Our direction, as written in the answer (mirrors the offer).
    pub direction: MediaDirection,
    /// SRTP keys when the audio is `RTP/SAVP` (SDES, RFC 4568); `None` for plain RTP.
    pub srtp: Option<SrtpKeyPair>,
}

/// The SDES keys of an SRTP stream: ours (we encrypt with it) and the peer's (we decrypt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeyPair {
    /// The suite both sides use.
    pub suite: SrtpSuite,
    /// Our `a=crypto` line's key material.
    pub local: CryptoAttribute,
    /// The peer's `a=crypto` line's key material.
    pub remote: CryptoAttribute,
}

/// Whether offers may, must or must not use SRTP (a trunk's `srtp` setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SrtpMode {
    /// Plain `RTP/AVP` only; an offer with only `RTP/SAVP` is refused.
    #[default]
    Off,
    /// `RTP/SAVP` when offered with a usable key, else plain RTP.
    Optional,
    /// `RTP/SAVP` only; a plain offer is refused.
    Required,
}

/// Suites we accept, best first.
const SRTP_SUITES: [SrtpSuite; 2] = [
    SrtpSuite::AesCm128HmacSha1_80,
    SrtpSuite::AesCm128HmacSha1_32,
];

/// Why an offer could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not parseable SDP.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No `m=audio` stream with RTP/AVP and a non-zero port.
    #[error("the offer has no usable RTP/AVP audio stream")]
    NoAudioStream,
    /// The audio stream offers none of the codecs we accept (answer 488).
    #[error("no common codec (offered payload types: {offered})")]
    NoCommonCodec {
        /// The offered payload types, as written.
        offered: String,
    },
    /// SRTP is required on this trunk and the offer has no `RTP/SAVP` audio with a usable key.
    #[error("SRTP is required and the offer has no RTP/SAVP audio with a supported a=crypto")]
    SrtpRequired,
    /// The offer only has `RTP/SAVP` audio and SRTP is off on this trunk.
    #[error("the offer requires SRTP (RTP/SAVP), which is off for this trunk")]
    SrtpOff,
    /// An answer to our offer picked an `a=crypto` tag (with its suite) that our offer did not
    /// carry (RFC 4568 §5.1.2: the answer echoes the tag and suite of one offered line).
    #[error("the answer's a=crypto tag {tag} ({suite}) matches no line of our offer")]
    CryptoNotOffered {
        /// The answer's tag.
        tag: u32,
        /// The answer's suite.
        suite: SrtpSuite,
    },
}

/// An `a=rtpmap` entry.
#[derive(Debug, Clone)]
struct RtpMap {
    payload_type: u8,
    encoding: String,
    clock_rate: u32,
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim().split_once(' ')?;
    let payload_type = pt.trim().parse().ok()?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim().to_string();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    Some(RtpMap {
        payload_type,
        encoding,
        clock_rate,
    })
}

fn attribute_values<'a>(
    attributes: &'a [Attribute],
    key: &'a str,
) -> impl Iterator<Item = &'a str> {
    attributes
        .iter()
        .filter(move |a| a.key.eq_ignore_ascii_case(key))
        .filter_map(|a| a.value.as_deref())
}

fn direction_of(attributes: &[Attribute]) -> Option<MediaDirection> {
    attributes
        .iter()
        .find_map(|a| MediaDirection::from_attribute(&a.key.to_ascii_lowercase()))
}

fn fmtp_for(attributes: &[Attribute], payload_type: u8) -> Option<String> {
    attribute_values(attributes, "fmtp").find_map(|v| {
        let (pt, params) = v.trim().split_once(' ')?;
        (pt.trim().parse::<u8>().ok()? == payload_type).then(|| params.trim().to_string())
    })
}

fn connection_ip(ci: &::sdp::description::common::ConnectionInformation) -> Option<IpAddr> {
    let address = ci.address.as_ref()?;
    // Multicast notation "addr/ttl" is split by the parser already; be defensive anyway.
    let text = address.address.split('/').next().unwrap_or("").trim();
    let ip: IpAddr = text.parse().ok()?;
    (!ip.is_unspecified()).then_some(ip)
}

fn is_rtp_avp(media: &MediaDescription) -> bool {
    media
        .media_name
        .protos
        .join("/")
        .eq_ignore_ascii_case("RTP/AVP")
}

fn is_rtp_savp(media: &MediaDescription) -> bool {
    media
        .media_name
        .protos
        .join("/")
        .eq_ignore_ascii_case("RTP/SAVP")
}

/// The best `a=crypto` line of a stream we support (unparseable or unsupported lines skipped).
fn usable_crypto(media: &MediaDescription) -> Option<CryptoAttribute> {
    let offered: Vec<CryptoAttribute> = attribute_values(&media.attributes, "crypto")
        .filter_map(|value| CryptoAttribute::parse(value).ok())
        .collect();
    crate::sdes::choose(&offered, &SRTP_SUITES).cloned()
}

fn pick_ptime(media: &MediaDescription, session: &SessionDescription) -> u32 {
    let lookup = |key: &str| -> Option<u32> {
        attribute_values(&media.attributes, key)
            .chain(attribute_values(&session.attributes, key))
            .find_map(|v| v.trim().parse::<u32>().ok())
    };
    let maxptime = lookup("maxptime").unwrap_or(u32::MAX);
    match lookup("ptime") {
        Some(p) if (10..=60).contains(&p) && p % 10 == 0 && p <= maxptime => p,
        _ => 20,
    }
}

/// What the offer's audio stream and its siblings look like, enough to write an answer.
struct OfferShape {
    negotiated: NegotiatedMedia,
    dtmf_fmtp: Option<String>,
    /// Every `m=` line of the offer, as (media, protos, first format); the audio one at `audio_index`.
    streams: Vec<(String, String, String)>,
    audio_index: usize,
    /// The peer's chosen `a=crypto` when the audio is `RTP/SAVP` (or best-effort `RTP/AVP`).
    remote_crypto: Option<CryptoAttribute>,
    /// The audio stream is `RTP/SAVP` (not `RTP/AVP`).
    secure_profile: bool,
}

fn parse_session(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_SIZE {
        return Err(SdpError::Malformed("SDP body too large".to_string()));
    }
    SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| SdpError::Malformed(e.to_string()))
}

/// Picks the audio stream and codec of an offer (or an answer to our offer): the first of
/// `preference` that the stream carries, on plain or secure RTP as `srtp` allows. With
/// `avp_crypto` an `RTP/AVP` stream with a usable `a=crypto` counts as secure too (best-effort
/// SDES, for answers to such an offer of ours).
fn negotiate(
    text: &str,
    preference: &[AudioCodec],
    srtp: SrtpMode,
    avp_crypto: bool,
) -> Result<OfferShape, SdpError> {
    let session = parse_session(text)?;
    let live_audio = |m: &MediaDescription| {
        m.media_name.media.eq_ignore_ascii_case("audio")
            && u16::try_from(m.media_name.port.value).is_ok_and(|port| port > 0)
    };
    let plain = session
        .media_descriptions
        .iter()
        .position(|m| live_audio(m) && is_rtp_avp(m));
    let secure = session
        .media_descriptions
        .iter()
        .enumerate()
        .find_map(|(i, m)| {
            (live_audio(m) && (is_rtp_savp(m) || (avp_crypto && is_rtp_avp(m))))
                .then(|| usable_crypto(m).map(|c| (i, c)))
                .flatten()
        });
    let any_secure = session
        .media_descriptions
        .iter()
        .any(|m| live_audio(m) && is_rtp_savp(m));
    let (audio_index, remote_crypto) = match (srtp, secure, plain) {
        (SrtpMode::Off, _, Some(i)) => (i, None),
        (SrtpMode::Off, _, None) if any_secure => return Err(SdpError::SrtpOff),
        (SrtpMode::Optional | SrtpMode::Required, Some((i, crypto)), _) => (i, Some(crypto)),
        (SrtpMode::Required, None, _) => return Err(SdpError::SrtpRequired),
        (SrtpMode::Optional, None, Some(i)) => (i, None),
        _ => return Err(SdpError::NoAudioStream),
    };
    let audio = &session.media_descriptions[audio_index];
    let secure_profile = is_rtp_savp(audio);

    let rtpmaps: Vec<RtpMap> = attribute_values(&audio.attributes, "rtpmap")
        .filter_map(parse_rtpmap)
        .collect();
    let offered: Vec<u8> = audio
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.trim().parse::<u8>().ok())
        .filter(|pt| *pt < 128)
        .collect();
    let codec_for = |pt: u8| -> Option<AudioCodec> {
        match rtpmaps.iter().find(|m| m.payload_type == pt) {
            Some(map) if map.clock_rate == 8000 => {
                if map.encoding.eq_ignore_ascii_case("PCMU") {
                    Some(AudioCodec::Pcmu)
                } else if map.encoding.eq_ignore_ascii_case("PCMA") {
                    Some(AudioCodec::Pcma)
                } else if map.encoding.eq_ignore_ascii_case("G722") {
                    Some(AudioCodec::G722)
                } else {
                    None
                }
            }
            // RFC 7587 §7: always `opus/48000/2`, whatever the audio is; a dynamic type only.
            Some(map)
                if map.clock_rate == 48_000
                    && pt >= 96
                    && map.encoding.eq_ignore_ascii_case("opus") =>
            {
                Some(AudioCodec::Opus)
            }
            Some(_) => None,
            None => match pt {
                0 => Some(AudioCodec::Pcmu),
                8 => Some(AudioCodec::Pcma),
                9 => Some(AudioCodec::G722),
                _ => None,
            },
        }
    };
    let (codec, payload_type) = preference
        .iter()
        .find_map(|wanted| {
            offered
                .iter()
                .find(|pt| codec_for(**pt) == Some(*wanted))
                .map(|pt| (*wanted, *pt))
        })
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: audio.media_name.formats.join(" "),
        })?;
    let telephone_event = |clock_rate: u32| {
        offered.iter().copied().find(|pt| {
            rtpmaps.iter().any(|m| {
                m.payload_type == *pt
                    && m.encoding.eq_ignore_ascii_case("telephone-event")
                    && m.clock_rate == clock_rate
            })
        })
    };
    let (dtmf_payload_type, dtmf_clock_rate) = match telephone_event(codec.clock_rate()) {
        Some(pt) => (Some(pt), codec.clock_rate()),
        None => (telephone_event(8000), 8000),
    };
    let dtmf_fmtp = dtmf_payload_type.and_then(|pt| fmtp_for(&audio.attributes, pt));

    let remote_ip = audio
        .connection_information
        .as_ref()
        .or(session.connection_information.as_ref())
        .and_then(connection_ip);
    let remote_port = u16::try_from(audio.media_name.port.value).unwrap_or(0);
    let remote_rtp = remote_ip.map(|ip| SocketAddr::new(ip, remote_port));
    let offered_direction = direction_of(&audio.attributes)
        .or_else(|| direction_of(&session.attributes))
        .unwrap_or(MediaDirection::SendRecv);
    let direction = offered_direction.mirrored();
    let ptime_ms = pick_ptime(audio, &session);
    let streams = session
        .media_descriptions
        .iter()
        .map(|m| {
            (
                m.media_name.media.clone(),
                m.media_name.protos.join("/"),
                m.media_name
                    .formats
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "0".to_string()),
            )
        })
        .collect();
    Ok(OfferShape {
        negotiated: NegotiatedMedia {
            codec,
            payload_type,
            dtmf_payload_type,
            dtmf_clock_rate,
            remote_rtp,
            ptime_ms,
            direction,
            srtp: None,
        },
        dtmf_fmtp,
        streams,
        audio_index,
        remote_crypto,
        secure_profile,
    })
}

/// Our address in SDP: the `IP4`/`IP6` token and the address.
fn address_line(local_ip: IpAddr) -> (&'static str, IpAddr) {
    (if local_ip.is_ipv4() { "IP4" } else { "IP6" }, local_ip)
}

/// Everything of our SDP after the `o=` line (compared to decide whether `o=` gets a new version).
fn render_body(
    shape: &OfferShape,
    local_ip: IpAddr,
    local_rtp_port: u16,
    direction: MediaDirection,
    local_crypto: &[CryptoAttribute],
    secure_profile: bool,
) -> String {
    let (ip_kind, ip) = address_line(local_ip);
    let media = &shape.negotiated;
    let mut body = String::with_capacity(280);
    // Writing to a String cannot fail.
    let _ = write!(body, "s=vaani\r\nc=IN {ip_kind} {ip}\r\nt=0 0\r\n");
    for (index, (kind, protos, first_format)) in shape.streams.iter().enumerate() {
        if index != shape.audio_index {
            // Decline every other stream with port 0, keeping the m= line count (RFC 3264 §6).
            let _ = write!(body, "m={kind} 0 {protos} {first_format}\r\n");
            continue;
        }
        let profile = if secure_profile {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let _ = write!(
            body,
            "m=audio {local_rtp_port} {profile} {}",
            media.payload_type
        );
        if let Some(dtmf) = media.dtmf_payload_type {
            let _ = write!(body, " {dtmf}");
        }
        let _ = write!(
            body,
            "\r\na=rtpmap:{}\r\n",
            media.codec.rtpmap(media.payload_type)
        );
        if let Some(fmtp) = media.codec.fmtp() {
            let _ = write!(body, "a=fmtp:{} {fmtp}\r\n", media.payload_type);
        }
        if let Some(dtmf) = media.dtmf_payload_type {
            let _ = write!(
                body,
                "a=rtpmap:{dtmf} telephone-event/{}\r\n",
                media.dtmf_clock_rate
            );
            if let Some(fmtp) = &shape.dtmf_fmtp {
                let _ = write!(body, "a=fmtp:{dtmf} {fmtp}\r\n");
            }
        }
        let _ = write!(body, "a=ptime:20\r\na={}\r\n", direction.attribute());
        for crypto in local_crypto {
            let _ = write!(body, "a=crypto:{crypto}\r\n");
        }
    }
    body
}

fn render_sdp(local_ip: IpAddr, session_id: u64, version: u64, body: &str) -> String {
    let (ip_kind, ip) = address_line(local_ip);
    format!("v=0\r\no=vaani {session_id} {version} IN {ip_kind} {ip}\r\n{body}")
}

/// Answer an SDP offer: pick the first codec of `preference` that the offer's first usable audio
/// stream contains, echo its telephone-event payload type, and write the answer for our RTP
/// address. Returns what was negotiated and the answer text.
pub fn answer_offer(
    offer: &str,
    preference: &[AudioCodec],
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
) -> Result<(NegotiatedMedia, String), SdpError> {
    let session =
        SdpSession::answer_initial(offer, preference, local_ip, local_rtp_port, session_id)?;
    Ok((
        session.negotiated().clone(),
        session.local_sdp().to_string(),
    ))
}

/// Our side of one call's offer/answer exchanges (RFC 3264): the first answer, answers to later
/// offers (re-INVITE, UPDATE), our own offers (a call we place, a re-INVITE that came without
/// one, a session refresh), and the `o=` version that rises whenever what we sent changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpSession {
    preference: Vec<AudioCodec>,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
    version: u64,
    /// What we last sent, after the `o=` line.
    last_body: String,
    local_sdp: String,
    negotiated: NegotiatedMedia,
    dtmf_fmtp: Option<String>,
    srtp_mode: SrtpMode,
    /// The `a=crypto` lines of the SDP we sent last: an answer to an offer of ours must pick
    /// one of them (by tag and suite), and we then encrypt with that line's key.
    local_crypto: Vec<CryptoAttribute>,
    /// The audio is (or, for our offer, is proposed as) `RTP/SAVP`; false for plain RTP and
    /// for SDES keys on an `RTP/AVP` stream (best-effort SRTP).
    secure_profile: bool,
}

/// The suites of our own SRTP offer, one `a=crypto` line each, tags 1, 2 … in this order.
const OFFER_SRTP_SUITES: [SrtpSuite; 2] = SRTP_SUITES;

/// Our key for an SRTP stream whose peer chose `remote`: the one we already use when nothing
/// changed (so a refresh re-offer gets the same answer), else a fresh one on the same tag.
fn local_key_for(remote: &CryptoAttribute, previous: Option<&SrtpKeyPair>) -> CryptoAttribute {
    match previous {
        Some(pair) if pair.remote == *remote => pair.local.clone(),
        _ => CryptoAttribute::generate(remote.tag, remote.suite),
    }
}

/// Fills in the SRTP keys of a negotiated shape; returns our `a=crypto` for the answer.
fn with_keys(shape: &mut OfferShape, previous: Option<&SrtpKeyPair>) -> Option<CryptoAttribute> {
    let remote = shape.remote_crypto.clone()?;
    let local = local_key_for(&remote, previous);
    shape.negotiated.srtp = Some(SrtpKeyPair {
        suite: remote.suite,
        local: local.clone(),
        remote,
    });
    Some(local)
}

impl SdpSession {
    /// Answers the call's first offer, on plain RTP only.
    pub fn answer_initial(
        offer: &str,
        preference: &[AudioCodec],
        local_ip: IpAddr,
        local_rtp_port: u16,
        session_id: u64,
    ) -> Result<Self, SdpError> {
        Self::answer_initial_with_srtp(
            offer,
            preference,
            local_ip,
            local_rtp_port,
            session_id,
            SrtpMode::Off,
        )
    }

    /// Answers the call's first offer under an SRTP policy: with `Optional` or `Required` an
    /// `RTP/SAVP` stream with a supported `a=crypto` line is answered with our own fresh key.
    pub fn answer_initial_with_srtp(
        offer: &str,
        preference: &[AudioCodec],
        local_ip: IpAddr,
        local_rtp_port: u16,
        session_id: u64,
        srtp_mode: SrtpMode,
    ) -> Result<Self, SdpError> {
        let mut shape = negotiate(offer, preference, srtp_mode, false)?;
        let local_crypto: Vec<CryptoAttribute> = with_keys(&mut shape, None).into_iter().collect();
        let body = render_body(
            &shape,
            local_ip,
            local_rtp_port,
            shape.negotiated.direction,
            &local_crypto,
            shape.secure_profile,
        );
        Ok(Self {
            preference: preference.to_vec(),
            local_ip,
            local_rtp_port,
            session_id,
            version: session_id,
            local_sdp: render_sdp(local_ip, session_id, session_id, &body),
            last_body: body,
            negotiated: shape.negotiated,
            dtmf_fmtp: shape.dtmf_fmtp,
            srtp_mode,
            local_crypto,
            secure_profile: shape.secure_profile,
        })
    }

    /// Our first offer, for a call we place (RFC 3264 §5): every codec of `preference` with its
    /// static payload type (Opus on [`OFFER_OPUS_PAYLOAD_TYPE`] with [`OPUS_FMTP`]),
    /// `telephone-event/8000` on payload type 101 (events 0-16),
    /// `a=ptime:20`, `sendrecv`, plain RTP. Take the peer's answer with
    /// [`accept_answer`](Self::accept_answer). An empty `preference` offers PCMU and PCMA.
    pub fn offer_initial(
        preference: &[AudioCodec],
        local_ip: IpAddr,
        local_rtp_port: u16,
        session_id: u64,
    ) -> Self {
        Self::offer_initial_with_srtp(
            preference,
            local_ip,
            local_rtp_port,
            session_id,
            SrtpMode::Off,
        )
    }

    /// [`offer_initial`](Self::offer_initial) under a trunk's SRTP policy (SDES, RFC 4568):
    ///
    /// * `Off`: plain `RTP/AVP`, no keys.
    /// * `Required`: `RTP/SAVP` with two fresh keys, `a=crypto:1 AES_CM_128_HMAC_SHA1_80` and
    ///   `a=crypto:2 AES_CM_128_HMAC_SHA1_32`; an answer must pick one of them, else
    ///   [`accept_answer`](Self::accept_answer) fails with [`SdpError::SrtpRequired`] (no
    ///   key) or [`SdpError::CryptoNotOffered`] (a line we did not offer).
    /// * `Optional`: `RTP/AVP` carrying the same two `a=crypto` lines (best-effort SDES, what
    ///   most SBCs and PBXs send): an answer with one of them (on `RTP/AVP` or `RTP/SAVP`)
    ///   gives SRTP, an answer without any gives plain RTP.
    pub fn offer_initial_with_srtp(
        preference: &[AudioCodec],
        local_ip: IpAddr,
        local_rtp_port: u16,
        session_id: u64,
        srtp_mode: SrtpMode,
    ) -> Self {
        let mut codecs: Vec<AudioCodec> = Vec::new();
        for codec in preference {
            if !codecs.contains(codec) {
                codecs.push(*codec);
            }
        }
        if codecs.is_empty() {
            codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcma];
        }
        let local_crypto: Vec<CryptoAttribute> = match srtp_mode {
            SrtpMode::Off => Vec::new(),
            SrtpMode::Optional | SrtpMode::Required => (1..)
                .zip(OFFER_SRTP_SUITES)
                .map(|(tag, suite)| CryptoAttribute::generate(tag, suite))
                .collect(),
        };
        let secure_profile = srtp_mode == SrtpMode::Required;
        let profile = if secure_profile {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let (ip_kind, ip) = address_line(local_ip);
        let mut body = String::with_capacity(400);
        let _ = write!(
            body,
            "s=vaani\r\nc=IN {ip_kind} {ip}\r\nt=0 0\r\nm=audio {local_rtp_port} {profile}"
        );
        for codec in &codecs {
            let _ = write!(body, " {}", codec.static_payload_type());
        }
        let _ = write!(body, " {OFFER_DTMF_PAYLOAD_TYPE}\r\n");
        for codec in &codecs {
            let _ = write!(
                body,
                "a=rtpmap:{}\r\n",
                codec.rtpmap(codec.static_payload_type())
            );
            if let Some(fmtp) = codec.fmtp() {
                let _ = write!(body, "a=fmtp:{} {fmtp}\r\n", codec.static_payload_type());
            }
        }
        let _ = write!(
            body,
            "a=rtpmap:{OFFER_DTMF_PAYLOAD_TYPE} telephone-event/8000\r\n\
             a=fmtp:{OFFER_DTMF_PAYLOAD_TYPE} 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        for crypto in &local_crypto {
            let _ = write!(body, "a=crypto:{crypto}\r\n");
        }
        let first = codecs[0];
        Self {
            preference: codecs,
            local_ip,
            local_rtp_port,
            session_id,
            version: session_id,
            local_sdp: render_sdp(local_ip, session_id, session_id, &body),
            last_body: body,
            negotiated: NegotiatedMedia {
                codec: first,
                payload_type: first.static_payload_type(),
                dtmf_payload_type: Some(OFFER_DTMF_PAYLOAD_TYPE),
                dtmf_clock_rate: 8000,
                remote_rtp: None,
                ptime_ms: 20,
                direction: MediaDirection::SendRecv,
                srtp: None,
            },
            dtmf_fmtp: Some("0-16".to_string()),
            srtp_mode,
            local_crypto,
            secure_profile,
        }
    }

    /// What is in force now.
    pub fn negotiated(&self) -> &NegotiatedMedia {
        &self.negotiated
    }

    /// The SDP we sent last (answer or offer).
    pub fn local_sdp(&self) -> &str {
        &self.local_sdp
    }

    /// The trunk's SRTP policy this session negotiates under.
    pub fn srtp_mode(&self) -> SrtpMode {
        self.srtp_mode
    }

    fn remember(&mut self, body: String) {
        if body != self.last_body {
            self.version = self.version.wrapping_add(1);
            self.last_body = body;
        }
        self.local_sdp = render_sdp(
            self.local_ip,
            self.session_id,
            self.version,
            &self.last_body,
        );
    }

    /// Our preference with the codec in force first.
    fn current_preference(&self) -> Vec<AudioCodec> {
        let mut preference = vec![self.negotiated.codec];
        preference.extend(
            self.preference
                .iter()
                .filter(|c| **c != self.negotiated.codec),
        );
        preference
    }

    /// Answers a later offer. The codec in use is kept when the offer still carries it. On error
    /// nothing changes: the call goes on with the session already agreed (RFC 3261 §14.2).
    pub fn answer(&mut self, offer: &str) -> Result<&NegotiatedMedia, SdpError> {
        let preference = self.current_preference();
        // A best-effort SRTP session stays secure when the peer re-offers the same way.
        let avp_crypto = self.negotiated.srtp.is_some() && !self.secure_profile;
        let mut shape = negotiate(offer, &preference, self.srtp_mode, avp_crypto)?;
        let local_crypto: Vec<CryptoAttribute> =
            with_keys(&mut shape, self.negotiated.srtp.as_ref())
                .into_iter()
                .collect();
        let body = render_body(
            &shape,
            self.local_ip,
            self.local_rtp_port,
            shape.negotiated.direction,
            &local_crypto,
            shape.secure_profile,
        );
        self.remember(body);
        self.negotiated = shape.negotiated;
        self.dtmf_fmtp = shape.dtmf_fmtp;
        self.local_crypto = local_crypto;
        self.secure_profile = shape.secure_profile;
        Ok(&self.negotiated)
    }

    /// Our offer for a re-INVITE that came without one: the codec in use, `sendrecv` whatever
    /// the peer's last direction was (RFC 6337 §5.1), our key in use when the audio is SRTP.
    pub fn offer(&mut self) -> &str {
        let shape = OfferShape {
            negotiated: self.negotiated.clone(),
            dtmf_fmtp: self.dtmf_fmtp.clone(),
            streams: vec![(String::new(), String::new(), String::new())],
            audio_index: 0,
            remote_crypto: None,
            secure_profile: self.secure_profile,
        };
        let local_crypto: Vec<CryptoAttribute> = self
            .negotiated
            .srtp
            .as_ref()
            .map(|pair| pair.local.clone())
            .into_iter()
            .collect();
        let body = render_body(
            &shape,
            self.local_ip,
            self.local_rtp_port,
            MediaDirection::SendRecv,
            &local_crypto,
            self.secure_profile,
        );
        self.remember(body);
        self.local_crypto = local_crypto;
        &self.local_sdp
    }

    /// Our offer for a session refresh by re-INVITE (RFC 4028 §7.4): the SDP we sent last,
    /// unchanged, with the same `o=` version (an offer identical to the previous SDP, RFC 3264
    /// §8), so a peer sees that nothing changes. Its answer goes to
    /// [`accept_answer`](Self::accept_answer).
    pub fn refresh_offer(&self) -> &str {
        &self.local_sdp
    }

    /// Takes the peer's answer to our offer: [`offer_initial`](Self::offer_initial) (answers in
    /// a 1xx or the 2xx of a call we placed; a later one replaces an earlier one),
    /// [`offer`](Self::offer) (from the ACK) or [`refresh_offer`](Self::refresh_offer). The
    /// codec in force is preferred, then the rest of our preference; the answer's
    /// telephone-event payload type is taken even when it differs from the one we offered. An
    /// `a=crypto` in the answer must echo the tag and suite of one of our lines, whose key we
    /// then encrypt with. On error the session in force stays.
    pub fn accept_answer(&mut self, answer: &str) -> Result<&NegotiatedMedia, SdpError> {
        let preference = self.current_preference();
        // Best-effort SDES: our RTP/AVP offer carried keys, so may the answer.
        let avp_crypto = !self.secure_profile && !self.local_crypto.is_empty();
        let mut shape = negotiate(answer, &preference, self.srtp_mode, avp_crypto)?;
        if let Some(remote) = shape.remote_crypto.clone() {
            let local = self
                .local_crypto
                .iter()
                .find(|ours| ours.tag == remote.tag && ours.suite == remote.suite)
                .cloned()
                .ok_or(SdpError::CryptoNotOffered {
                    tag: remote.tag,
                    suite: remote.suite,
                })?;
            shape.negotiated.srtp = Some(SrtpKeyPair {
                suite: remote.suite,
                local,
                remote,
            });
        }
        self.negotiated = shape.negotiated;
        if shape.dtmf_fmtp.is_some() {
            self.dtmf_fmtp = shape.dtmf_fmtp;
        }
        if self.negotiated.srtp.is_some() {
            self.secure_profile = shape.secure_profile;
        }
        Ok(&self.negotiated)
    }
}
