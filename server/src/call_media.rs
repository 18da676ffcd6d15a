//! Configuration turned into per-call settings: media session, codec preference, plugin limits.

use std::time::Duration;

use vaani_config::{Codec, Config, TenantConfig};
use vaani_media::{BargeInConfig, Codec as MediaCodec, Law, SessionConfig, Vad, VadConfig};
use vaani_sandbox::PluginLimits;
use vaani_sip::sdp::{AudioCodec, NegotiatedMedia};

/// The codecs vaani can answer with, in the configured order of preference.
pub fn codec_preference(config: &Config) -> Vec<AudioCodec> {
    codec_list(&config.media.codecs)
}

/// The SDP codecs of the configured `codecs` (every configured codec is implemented), in order.
pub fn codec_list(codecs: &[Codec]) -> Vec<AudioCodec> {
    codecs
        .iter()
        .map(|codec| match codec {
            Codec::Pcmu => AudioCodec::Pcmu,
            Codec::Pcma => AudioCodec::Pcma,
            Codec::G722 => AudioCodec::G722,
            Codec::Opus => AudioCodec::Opus,
        })
        .collect()
}

/// Media session settings for one call with the negotiated codec and addresses.
pub fn session_config(config: &Config, negotiated: &NegotiatedMedia) -> SessionConfig {
    let codec = match negotiated.codec {
        AudioCodec::Pcmu => MediaCodec::G711(Law::Mu),
        AudioCodec::Pcma => MediaCodec::G711(Law::A),
        AudioCodec::G722 => MediaCodec::G722,
        AudioCodec::Opus => MediaCodec::Opus,
    };
    let mut session = SessionConfig::new(codec);
    session.payload_type = negotiated.payload_type;
    session.dtmf_payload_type = negotiated.dtmf_payload_type;
    session.dtmf_sender.clock_rate = negotiated.dtmf_clock_rate;
    session.remote = negotiated.remote_rtp;
    session.srtp = negotiated.srtp.as_ref().map(srtp_keys);
    session.rtp_timeout = Duration::from_secs(config.media.rtp_timeout_secs);
    session.vad = VadConfig {
        threshold_on: config.vad.threshold_on as f32,
        threshold_off: config.vad.threshold_off as f32,
        min_speech_ms: config.vad.min_speech_ms,
        hangover_ms: config.vad.hangover_ms,
    };
    session.barge_in = BargeInConfig {
        enabled: config.media.barge_in,
        min_speech_ms: config.media.barge_in_min_speech_ms,
        ..BargeInConfig::default()
    };
    session
}

/// The media session's SRTP keys for what SDES agreed.
pub fn srtp_keys(pair: &vaani_sip::SrtpKeyPair) -> vaani_media::SrtpKeys {
    vaani_media::SrtpKeys {
        suite: match pair.suite {
            vaani_sip::SrtpSuite::AesCm128HmacSha1_80 => {
                vaani_media::SrtpSuite::AesCm128HmacSha1_80
            }
            vaani_sip::SrtpSuite::AesCm128HmacSha1_32 => {
                vaani_media::SrtpSuite::AesCm128HmacSha1_32
            }
        },
        local: pair.local.key_salt(),
        remote: pair.remote.key_salt(),
    }
}

/// The SDP SRTP mode of a trunk's `srtp` policy.
pub fn srtp_mode(policy: vaani_config::SrtpPolicy) -> vaani_sip::SrtpMode {
    match policy {
        vaani_config::SrtpPolicy::Off => vaani_sip::SrtpMode::Off,
        vaani_config::SrtpPolicy::Optional => vaani_sip::SrtpMode::Optional,
        vaani_config::SrtpPolicy::Required => vaani_sip::SrtpMode::Required,
    }
}

/// A fresh voice-activity detector for one call.
pub fn new_vad() -> Box<dyn Vad> {
    Box::new(vaani_media::EarshotVad::new())
}

/// The sandbox limits of one tenant (server limits, possibly lowered by the tenant).
pub fn plugin_limits(tenant: &TenantConfig) -> PluginLimits {
    let limits = &tenant.sandbox;
    PluginLimits {
        memory_bytes: (limits.memory_mib as usize) << 20,
        event_budget: Duration::from_millis(limits.event_budget_ms),
        lifecycle_budget: Duration::from_millis(limits.lifecycle_budget_ms),
        fuel_per_event: limits.fuel_per_event,
        hostcall_fuel: (limits.hostcall_fuel_kib as usize) << 10,
        max_says_per_call: limits.max_says_per_call,
        max_timers: limits.max_timers,
        ..PluginLimits::default()
    }
}

/// The media statistics stored with a call (JSON, standard metric names where they exist).
pub fn media_stats_json(stats: &vaani_media::MediaStats) -> serde_json::Value {
    let jitter = &stats.jitter;
    serde_json::json!({
        "packets_sent": stats.packets_sent,
        "bytes_sent": stats.bytes_sent,
        "packets_received": stats.packets_received,
        "bytes_received": stats.bytes_received,
        "invalid_packets": stats.invalid_packets,
        "unknown_payload_packets": stats.unknown_payload_packets,
        "foreign_packets": stats.foreign_packets,
        "srtp_failures": stats.srtp_failures,
        "dtmf_digits": stats.dtmf_digits,
        "barge_ins": stats.barge_ins,
        "caller_media_ms": stats.caller_media_ms,
        "packets_lost": jitter.lost,
        "packets_late": jitter.late,
        "packets_reordered": jitter.reordered,
        "packets_duplicated": jitter.duplicate,
        "concealed_frames": jitter.concealed_frames,
        // Opus: lost frames rebuilt from the next packet's in-band FEC, frames of the codec's
        // own concealment (also in concealed_frames), payloads the decoder refused.
        "fec_recovered_frames": jitter.fec_recovered,
        "codec_plc_frames": jitter.codec_plc_frames,
        "decode_errors": jitter.decode_errors,
        // RFC 3550 interarrival jitter is kept in RTP timestamp units (8 kHz, Opus 48 kHz).
        "interarrival_jitter_ms": jitter.interarrival_jitter * 1000.0
            / f64::from(jitter.clock_rate.max(1)),
        "jitter_buffer_target_delay_ms": jitter.target_delay_ms,
        // Call quality (RTCP, RFC 3550; E-model, ITU-T G.107 — see vaani_media::rtcp).
        "jitter_ms": jitter.interarrival_jitter / 8.0,
        "rtcp_sent": stats.rtcp.sent,
        "rtcp_received": stats.rtcp.received,
        "rtcp_invalid": stats.rtcp.invalid,
        "rtt_ms": {
            "last": stats.rtcp.rtt_last_ms,
            "mean": stats.rtcp.rtt_mean_ms,
            "samples": stats.rtcp.rtt_samples,
        },
        "peer_reported_loss": {
            "fraction": stats.rtcp.peer_fraction_lost,
            "cumulative": stats.rtcp.peer_cumulative_lost,
            "jitter_ms": stats.rtcp.peer_jitter_ms,
        },
        "inbound_loss": stats.inbound_loss(),
        "mos": stats.mos(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_stats_json_carries_rtcp_figures_and_mos() {
        let mut stats = vaani_media::MediaStats::default();
        let empty = media_stats_json(&stats);
        assert_eq!(empty["rtcp_sent"], 0);
        assert!(empty["mos"].is_null(), "no audio, no MOS: {empty}");
        assert!(empty["rtt_ms"]["last"].is_null());
        stats.jitter.received = 90;
        stats.jitter.lost = 10;
        stats.jitter.interarrival_jitter = 24.0;
        stats.rtcp.sent = 4;
        stats.rtcp.received = 3;
        stats.rtcp.rtt_last_ms = Some(42.0);
        stats.rtcp.rtt_mean_ms = Some(40.0);
        stats.rtcp.peer_fraction_lost = Some(0.25);
        stats.rtcp.peer_cumulative_lost = Some(7);
        let json = media_stats_json(&stats);
        assert_eq!(json["rtcp_sent"], 4);
        assert_eq!(json["rtcp_received"], 3);
        assert_eq!(json["rtt_ms"]["last"], 42.0);
        assert_eq!(json["rtt_ms"]["mean"], 40.0);
        assert_eq!(json["peer_reported_loss"]["fraction"], 0.25);
        assert_eq!(json["peer_reported_loss"]["cumulative"], 7);
        assert_eq!(json["jitter_ms"], 3.0);
        assert_eq!(json["inbound_loss"], 0.1);
        let mos = json["mos"].as_f64().expect("mos");
        assert!((3.3..3.5).contains(&mos), "{mos}");
    }
}
